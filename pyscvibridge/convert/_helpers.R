# R side of pyscvibridge.convert: small functions that read and write object slots directly, so
# they work for Seurat v5 objects (Assay5) with SeuratObject 4 installed as well as with
# SeuratObject 5. This file is the one place that knows the objects' slot layout (the R package
# asks Python, which asks these functions). Loaded once per R session into its own environment,
# whose parent is R's base environment: a user's definitions cannot shadow what it calls.

.pysb_so_version <- function() {
  if (!requireNamespace("SeuratObject", quietly = TRUE)) return(NA_character_)
  as.character(utils::packageVersion("SeuratObject"))
}

.pysb_so5 <- function() {
  v <- .pysb_so_version()
  !is.na(v) && utils::compareVersion(v, "5.0.0") >= 0
}

.pysb_class <- function(x) as.character(class(x))

.pysb_read_rds <- function(path) readRDS(path)

.pysb_save_rds <- function(x, path) {
  # A write that fails half-way (a full disk) can come as a warning from the connection: an error here
  withCallingHandlers(saveRDS(x, path), warning = function(w) stop(conditionMessage(w), call. = FALSE))
  invisible(TRUE)
}

# ---------------------------------------------------------------- Seurat -> parts

# Names of an assay's layers that hold data: an Assay5's layers, or a v4 Assay's non-empty slots.
.pysb_layer_names <- function(a) {
  if (inherits(a, "Assay5")) return(names(a@layers))
  slots <- c("counts", "data", "scale.data")
  slots[vapply(slots, function(s) methods::.hasSlot(a, s) && length(methods::slot(a, s)) > 0, logical(1))]
}

.pysb_sce_assay_names <- function(sce) {
  an <- SummarizedExperiment::assayNames(sce)
  if (is.null(an)) character(0) else an
}

.pysb_logmap <- function(x) {
  # A LogMap (SeuratObject 5) is a logical matrix with row names in .Data; SeuratObject 4 does
  # not define the class, so read the data part directly.
  m <- if (isS4(x)) x@.Data else x
  if (is.null(dimnames(m))) dimnames(m) <- attr(x, "dimnames")
  m
}

.pysb_seurat_summary <- function(obj) {
  assays <- obj@assays
  list(
    assays = names(assays),
    assay_classes = vapply(assays, function(a) class(a)[1], ""),
    active = as.character(obj@active.assay),
    version = as.character(obj@version),
    cells = rownames(obj@meta.data),
    reductions = names(obj@reductions),
    graphs = names(obj@graphs),
    misc = names(obj@misc),
    commands = names(obj@commands),
    tools = names(obj@tools),
    images = names(obj@images),
    neighbors = names(obj@neighbors)
  )
}

# Every assay of a Seurat object, without converting any: class, features and cells (its size) and
# layers (v5) or non-empty slots (v4), in the object's assay order.
.pysb_seurat_assays <- function(obj) {
  lapply(obj@assays, function(a) {
    if (inherits(a, "Assay5")) {
      n_features <- nrow(.pysb_logmap(a@features))
      n_cells <- nrow(.pysb_logmap(a@cells))
    } else {
      n_cells <- length(.pysb_assay_cells(a))
      n_features <- nrow(a@meta.features)
      if (!n_features) {
        for (sl in c("counts", "data")) {
          m <- methods::slot(a, sl)
          if (length(m) > 0) {
            n_features <- nrow(m)
            break
          }
        }
      }
    }
    list(class = class(a)[1], n_features = as.integer(n_features), n_cells = as.integer(n_cells),
         layers = .pysb_layer_names(a))
  })
}

# The altExps of a SingleCellExperiment: for each, its size (features, cells) and assay names.
.pysb_sce_alt_exps <- function(sce) {
  alt <- .pysb_int_names(sce, "int_colData", "altExps", SingleCellExperiment::altExpNames)
  out <- lapply(alt, function(n) {
    e <- SingleCellExperiment::altExp(sce, n)
    list(n_features = nrow(e), n_cells = ncol(e), assays = .pysb_sce_assay_names(e))
  })
  names(out) <- alt
  out
}

# For one assay: a list of layers, each list(name, matrix, cells, features). Names equal to the
# object's cells / the assay's features come back as NULL (the common case; saves converting
# tens of thousands of strings per layer).
.pysb_assay_layers <- function(a, obj_cells) {
  res <- .pysb_assay_layers_full(a)
  for (ln in names(res$layers)) {
    l <- res$layers[[ln]]
    if (identical(l$cells, obj_cells)) l$cells <- NULL
    if (identical(l$features, res$features)) l$features <- NULL
    res$layers[[ln]] <- l
  }
  if (identical(res$cells, obj_cells)) res$cells <- NULL
  res
}

.pysb_assay_layers_full <- function(a) {
  if (inherits(a, "Assay5")) {
    cm <- .pysb_logmap(a@cells)
    fm <- .pysb_logmap(a@features)
    out <- list()
    for (ln in names(a@layers)) {
      out[[ln]] <- list(
        matrix = a@layers[[ln]],
        cells = rownames(cm)[cm[, ln]],
        features = rownames(fm)[fm[, ln]]
      )
    }
    return(list(layers = out, cells = rownames(cm), features = rownames(fm), kind = "Assay5"))
  }
  # Seurat v4 Assay: counts, data, scale.data slots with dimnames.
  out <- list()
  for (sl in c("counts", "data", "scale.data")) {
    m <- methods::slot(a, sl)
    if (length(m) == 0 || any(dim(m) == 0)) next
    out[[sl]] <- list(matrix = m, cells = colnames(m), features = rownames(m))
  }
  feats <- rownames(a@meta.features)
  if (length(feats) == 0 && length(out)) feats <- out[[1]]$features
  cells <- if (length(out)) out[[1]]$cells else character(0)
  list(layers = out, cells = cells, features = feats, kind = "Assay")
}

# The cells of one assay, in its order: an Assay5's cells LogMap, else the columns of its counts
# (or data) slot.
.pysb_assay_cells <- function(a) {
  if (inherits(a, "Assay5")) return(rownames(.pysb_logmap(a@cells)))
  for (sl in c("counts", "data")) {
    m <- methods::slot(a, sl)
    if (length(m) > 0 && !is.null(colnames(m))) return(colnames(m))
  }
  character(0)
}

.pysb_assay_feature_meta <- function(a) {
  if (inherits(a, "Assay5")) {
    md <- a@meta.data
    fm <- .pysb_logmap(a@features)
    if (nrow(md) == nrow(fm)) rownames(md) <- rownames(fm)
    return(md)
  }
  a@meta.features
}

.pysb_assay_var_features <- function(a) {
  if (inherits(a, "Assay5")) {
    md <- a@meta.data
    if (!"var.features" %in% colnames(md)) return(character(0))
    vf <- md[["var.features"]]
    rk <- if ("var.features.rank" %in% colnames(md)) md[["var.features.rank"]] else seq_along(vf)
    keep <- !is.na(vf)
    return(as.character(vf[keep][order(rk[keep])]))
  }
  as.character(a@var.features)
}

.pysb_reduction <- function(r) {
  list(
    embeddings = r@cell.embeddings,
    loadings = r@feature.loadings,
    key = r@key,
    assay = r@assay.used,
    stdev = r@stdev,
    global = r@global
  )
}

.pysb_idents <- function(obj) {
  id <- obj@active.ident
  nm <- names(id)
  if (identical(nm, rownames(obj@meta.data))) nm <- NULL
  list(values = id, names = nm)
}

# ---------------------------------------------------------------- results -> Seurat

.pysb_add_reduction_seurat <- function(obj, name, emb, key, assay) {
  colnames(emb) <- paste0(key, seq_len(ncol(emb)))
  dr <- methods::new(
    "DimReduc",
    cell.embeddings = emb,
    feature.loadings = matrix(numeric(0), 0, 0),
    feature.loadings.projected = matrix(numeric(0), 0, 0),
    assay.used = assay,
    global = FALSE,
    stdev = numeric(0),
    key = key,
    misc = list()
  )
  obj@reductions[[name]] <- dr
  obj
}

.pysb_set_misc_seurat <- function(obj, key, value) {
  obj@misc[[key]] <- value
  obj
}

# New cell-metadata columns (a data.frame in the object's cell order); same-named columns are
# replaced, the others are left as they are.
.pysb_add_obs_seurat <- function(obj, df) {
  for (col in names(df)) obj@meta.data[[col]] <- df[[col]]
  obj
}

.pysb_add_obs_sce <- function(sce, df) {
  cd <- SummarizedExperiment::colData(sce)
  for (col in names(df)) cd[[col]] <- df[[col]]
  SummarizedExperiment::colData(sce) <- cd
  sce
}

# A features x cells matrix as a new assay (data slot only); CreateAssayObject(data = ) exists in
# SeuratObject 4 and 5. Set through the slot, so v5 objects read under SeuratObject 4 work too.
.pysb_add_assay_seurat <- function(obj, name, mat) {
  a <- suppressWarnings(SeuratObject::CreateAssayObject(data = mat))
  a@key <- paste0(tolower(gsub("[^[:alnum:]]", "", name)), "_")
  obj@assays[[name]] <- a
  obj
}

.pysb_add_altexp_sce <- function(sce, name, mat) {
  se <- SummarizedExperiment::SummarizedExperiment(assays = list(normalized = mat))
  SingleCellExperiment::altExp(sce, name) <- se
  sce
}

.pysb_add_reduction_sce <- function(sce, name, emb) {
  SingleCellExperiment::reducedDim(sce, name) <- emb
  sce
}

.pysb_set_misc_sce <- function(sce, key, value) {
  md <- S4Vectors::metadata(sce)
  md[[key]] <- value
  S4Vectors::metadata(sce) <- md
  sce
}

# ---------------------------------------------------------------- SCE -> parts

# reducedDims(), altExpNames(), colPairNames() each take ~60 ms on 20,000 cells (they rebuild
# dimnames); the internal columns they read (SingleCellExperiment >= 1.7) are read directly when
# present, through the accessors otherwise.
.pysb_int_names <- function(sce, where, what, accessor) {
  v <- tryCatch(names(methods::slot(sce, where)[[what]]), error = function(e) NULL)
  if (is.null(v)) v <- accessor(sce)
  if (is.null(v)) character(0) else v
}

.pysb_sce_parts <- function(sce) {
  an <- SummarizedExperiment::assayNames(sce)
  if (is.null(an)) an <- character(0)
  assays <- SummarizedExperiment::assays(sce, withDimnames = FALSE)
  rd <- tryCatch(as.list(sce@int_colData[["reducedDims"]]@listData), error = function(e) NULL)
  if (is.null(rd)) rd <- as.list(SingleCellExperiment::reducedDims(sce, withDimnames = FALSE))
  alt <- .pysb_int_names(sce, "int_colData", "altExps", SingleCellExperiment::altExpNames)
  list(
    assay_names = an,
    assays = as.list(assays),
    cells = colnames(sce),
    features = rownames(sce),
    col_data = SummarizedExperiment::colData(sce),
    row_data = SummarizedExperiment::rowData(sce),
    reduced_dim_names = names(rd),
    reduced_dims = unname(rd),
    alt_exps = alt,
    metadata = S4Vectors::metadata(sce),
    col_pairs = .pysb_int_names(sce, "int_colData", "colPairs", SingleCellExperiment::colPairNames),
    row_pairs = .pysb_int_names(sce, "int_elementMetadata", "rowPairs", SingleCellExperiment::rowPairNames)
  )
}

.pysb_as_dgc <- function(m) methods::as(methods::as(m, "CsparseMatrix"), "dMatrix")

.pysb_s4df_to_list <- function(df) {
  list(columns = as.list(df@listData), rownames = df@rownames, nrows = df@nrows)
}

# ---------------------------------------------------------------- AnnData parts -> R objects

# counts/data: dgCMatrix (features x cells); meta: data.frame (cells); fmeta: data.frame
# (features) or NULL; idents: factor or NULL; reductions: list of list(embeddings, loadings, key,
# stdev). Works with SeuratObject 4 (v4 Assay) and 5 (Assay5), using only methods both have.
#
# CreateSeuratObject() spends most of its time on nCount/nFeature (colSums(counts > 0) makes a
# logical copy of the whole matrix). With fast = TRUE the object is created around an empty matrix
# with the same dimnames, the real one is put in its place, and nCount/nFeature come from Python
# (n_count, n_feature); the result is identical() to the plain call (tested).
.pysb_make_seurat <- function(counts, data, meta, assay, fmeta, var_features, idents, reductions,
                              n_count = NULL, n_feature = NULL) {
  fast <- !is.null(n_count) && !is.null(n_feature) && methods::is(counts, "dgCMatrix")
  if (fast) {
    e <- methods::new("dgCMatrix")
    e@Dim <- counts@Dim
    e@Dimnames <- counts@Dimnames
    e@p <- integer(counts@Dim[2] + 1L)
    obj <- suppressWarnings(SeuratObject::CreateSeuratObject(counts = e, assay = assay))
    if (.pysb_so5()) {
      SeuratObject::LayerData(obj, assay = assay, layer = "counts") <- counts
    } else {
      a <- obj@assays[[assay]]
      a@counts <- counts
      a@data <- counts
      obj@assays[[assay]] <- a
    }
    obj@meta.data[[paste0("nCount_", assay)]] <- n_count
    obj@meta.data[[paste0("nFeature_", assay)]] <- n_feature
  } else {
    obj <- suppressWarnings(SeuratObject::CreateSeuratObject(counts = counts, assay = assay))
  }
  if (!is.null(data)) {
    if (.pysb_so5()) {
      SeuratObject::LayerData(obj, assay = assay, layer = "data") <- data
    } else {
      obj[[assay]] <- SeuratObject::SetAssayData(obj[[assay]], slot = "data", new.data = data)
    }
  }
  computed <- setdiff(colnames(obj@meta.data), colnames(meta))
  if (length(computed)) meta <- cbind(obj@meta.data[, computed, drop = FALSE], meta)
  obj@meta.data <- meta
  if (!is.null(idents)) {
    names(idents) <- colnames(obj)
    obj@active.ident <- idents
  }
  if (!is.null(fmeta) && ncol(fmeta) > 0) {
    obj[[assay]] <- SeuratObject::AddMetaData(obj[[assay]], fmeta)
  }
  if (length(var_features)) SeuratObject::VariableFeatures(obj[[assay]]) <- var_features
  for (nm in names(reductions)) {
    r <- reductions[[nm]]
    args <- list(embeddings = r$embeddings, key = r$key, assay = assay)
    if (!is.null(r$loadings)) args$loadings <- r$loadings
    if (!is.null(r$stdev)) args$stdev <- r$stdev
    obj[[nm]] <- do.call(SeuratObject::CreateDimReducObject, args)
  }
  obj
}

# SingleCellExperiment() validates its assays several times over (for a dgCMatrix an O(nnz) check
# each time: about half a second for 40M non-zeros). Build the object around empty matrices with
# the same dimensions and dimnames, then put the real matrices into the assay list, which is what
# the constructor would have stored. Falls back to the plain constructor if the internals differ.
.pysb_make_sce <- function(assays, col_data, row_data, reduced_dims, metadata, fast = TRUE) {
  cd <- S4Vectors::DataFrame(col_data, check.names = FALSE)
  rd <- S4Vectors::DataFrame(row_data, check.names = FALSE)
  build <- function(a) {
    SingleCellExperiment::SingleCellExperiment(
      assays = a, colData = cd, rowData = rd, reducedDims = reduced_dims, metadata = metadata
    )
  }
  is_dgc <- vapply(assays, function(m) methods::is(m, "dgCMatrix"), TRUE)
  if (!fast || !length(assays) || !all(is_dgc)) return(build(assays))
  placeholders <- lapply(assays, function(m) {
    e <- methods::new("dgCMatrix")
    e@Dim <- m@Dim
    e@Dimnames <- m@Dimnames
    e@p <- integer(m@Dim[2] + 1L)
    e
  })
  sce <- build(placeholders)
  swapped <- tryCatch({
    data <- sce@assays@data
    stored <- data@listData
    if (!identical(names(stored), names(assays))) stop("unexpected assay layout")
    for (n in names(assays)) {
      m <- assays[[n]]
      m@Dimnames <- stored[[n]]@Dimnames
      stored[[n]] <- m
    }
    data@listData <- stored
    sce@assays@data <- data
    sce
  }, error = function(e) NULL)
  if (is.null(swapped)) build(assays) else swapped
}

# The R package's allocator of buffer vectors (src/buffers.c: numeric vectors whose memory R's
# allocator does not hand out, so allocating one never runs a garbage collection). Loads only the
# package's shared library, not its namespace (which would set up reticulate). Looks in R's library,
# then in `extra_lib` (the virtual environment's Rlib, where scripts/setup.sh installs it). NULL when
# the R package is in neither or predates the routine.
.pysb_buffer_routine <- function(extra_lib = character()) {
  .pysb_native_routine("pysb_buffer_vector", extra_lib)
}

.pysb_native_routine <- function(name, extra_lib = character()) {
  dir <- find.package("pyscvibridge", quiet = TRUE)
  extra_lib <- extra_lib[dir.exists(extra_lib)]
  if (!length(dir) && length(extra_lib)) dir <- find.package("pyscvibridge", lib.loc = extra_lib, quiet = TRUE)
  if (!length(dir)) return(NULL)
  tryCatch({
    dll <- library.dynam("pyscvibridge", "pyscvibridge", lib.loc = dirname(dir[1]))
    getNativeSymbolInfo(name, dll)
  }, error = function(e) NULL)
}

# src/rds_safety.c: unserialize the file in C, walk it without forcing anything; list(object or
# NULL when refused, findings, number of findings, bytes read). gzfile() reads gzip, bzip2, xz and
# uncompressed files, as readRDS() does.
.pysb_read_rds_checked <- function(routine, path, limit, keep) {
  con <- gzfile(path, "rb")
  on.exit(close(con))
  .Call(routine, con, limit, keep)
}

.pysb_buffer_vector <- function(routine, type, n) .Call(routine, type, n)

.pysb_new_dgc <- function(i, p, x, Dim, Dimnames) {
  loadNamespace("Matrix")
  m <- methods::new("dgCMatrix")
  m@Dim <- Dim
  m@Dimnames <- Dimnames
  m@p <- p
  m@i <- i
  m@x <- x
  m
}

# Character vectors cross the R/Python boundary as one string: element by element costs
# microseconds per string in rpy2 (a noticeable part of converting 20,000 cell names).
.pysb_seps <- c("\x1f", "\x1e", "\x1d", "\x1c", "\x01")

.pysb_join <- function(x) {
  x <- enc2utf8(as.character(x))
  na <- which(is.na(x))
  x[na] <- ""
  for (sep in .pysb_seps) {
    if (!any(grepl(sep, x, fixed = TRUE))) {
      return(list(paste0(x, sep, collapse = ""), sep, na))
    }
  }
  list(NULL, NULL, na)
}

.pysb_split <- function(big, sep, n, na) {
  if (n == 0) return(character(0))
  x <- strsplit(big, sep, fixed = TRUE)[[1]]
  if (length(x) != n) stop("internal error: split gave ", length(x), " strings, expected ", n)
  x[na] <- NA_character_
  x
}
