# A stand-in for Seurat 5's IntegrateLayers(), which Seurat 4.3 does not have: it calls an
# integration method exactly as IntegrateLayers() does and adds what the method returns.
#
# The contract, from Seurat 5 (satijalab/seurat, R/integration5.R, IntegrateLayers()):
#   assay <- assay %||% DefaultAssay(object = object)
#   if (inherits(x = object[[assay]], what = 'SCTAssay')) {
#     layers <- 'data'
#     scale.layer <- 'scale.data'
#     features <- features %||% SelectSCTIntegrationFeatures(object = object, assay = assay)
#   } else if (inherits(x = object[[assay]], what = 'StdAssay')) {
#     layers <- Layers(object = object, assay = assay, search = layers %||% 'data')
#     scale.layer <- Layers(object = object, search = scale.layer)
#     features <- features %||% VariableFeatures(object = object, assay = assay, nfeatures = 2000L)
#   } else {
#     abort(message = "'assay' must be a v5 or SCT assay")
#   }
#   if (!is.null(scale.layer)) {
#     features <- intersect(x = features, y = Features(x = object, assay = assay, layer = scale.layer))
#   }
#   if (!length(x = features)) abort(message = "None of the features provided are found in this assay")
#   ...
#   obj.orig <- object[[orig.reduction]]
#   value <- method(object = object[[assay]], assay = assay, orig = obj.orig, layers = layers,
#                   scale.layer = scale.layer, features = features, ...)
#   for (i in names(x = value)) object[[i]] <- value[[i]]
# So IntegrateLayers() itself passes neither `groups` nor `verbose`: they reach the method only
# through `...` when the user gives them. A v3/v4 `Assay` is refused (it is not a StdAssay).
#
# SeuratWrappers' scVIIntegration (satijalab/seurat-wrappers, R/scVI.R) is called the same way;
# its arguments: object, features = NULL, layers = "counts", conda_env = NULL,
# new.reduction = "integrated.dr", ndims = 30, nlayers = 2, gene_likelihood = "nb",
# max_epochs = NULL, ...
#
# With SeuratObject 5 installed, this calls SeuratObject's own Layers(), VariableFeatures() and
# `[[<-`; with SeuratObject 4 (which reads v5 objects only by their slots) it does the same with
# the slots.
so5 <- function() utils::packageVersion("SeuratObject") >= "5.0.0"

integrate_layers <- function(object, method, orig.reduction = "pca", assay = NULL, features = NULL,
                             layers = NULL, scale.layer = "scale.data", ...) {
  assay <- assay %||% object@active.assay
  a <- object@assays[[assay]]
  if (inherits(a, "SCTAssay")) {
    layers <- "data"
    scale.layer <- "scale.data"
    if (is.null(features)) stop("give features: SelectSCTIntegrationFeatures() is Seurat 5's")
    features <- intersect(features, rownames(a@scale.data))
    scale.layer <- NULL # done: the scale.data slot's features
  } else if (inherits(a, "Assay5")) {
    if (so5()) {
      layers <- SeuratObject::Layers(object, assay = assay, search = layers %||% "data")
      scale.layer <- tryCatch(SeuratObject::Layers(object, search = scale.layer), error = function(e) NULL)
      features <- features %||% SeuratObject::VariableFeatures(object, assay = assay, nfeatures = 2000L)
    } else {
      search <- layers %||% "data"
      present <- names(a@layers)
      layers <- if (all(search %in% present)) search else grep(paste0("^", search[1]), present, value = TRUE)
      scale.layer <- intersect(scale.layer, present)
      if (!length(scale.layer)) scale.layer <- NULL
      if (is.null(features)) {
        md <- a@meta.data
        features <- if ("var.features" %in% names(md)) stats::na.omit(md$var.features)
      }
    }
  } else {
    stop("'assay' must be a v5 or SCT assay")
  }
  if (!is.null(scale.layer)) {
    in_scale <- if (so5()) {
      SeuratObject::Features(object, assay = assay, layer = scale.layer)
    } else {
      fm <- a@features
      rownames(fm@.Data)[fm@.Data[, scale.layer]]
    }
    features <- intersect(features, in_scale)
  }
  if (!length(features)) stop("None of the features provided are found in this assay")
  if (!orig.reduction %in% names(object@reductions)) stop(sQuote(orig.reduction), " is not a dimensional reduction")
  obj.orig <- object@reductions[[orig.reduction]]
  value <- method(
    object = a, assay = assay, orig = obj.orig, layers = layers, scale.layer = scale.layer,
    features = features, ...
  )
  for (i in names(value)) object <- add_to_object(object, i, value[[i]])
  object
}

# object[[i]] <- value, or its slot-level equivalent where SeuratObject 4 cannot index a v5 object.
add_to_object <- function(object, i, value) {
  if (so5() || !inherits(object@assays[[object@active.assay]], "Assay5")) {
    object[[i]] <- value
    return(object)
  }
  if (methods::is(value, "DimReduc")) {
    stopifnot(setequal(rownames(value@cell.embeddings), rownames(object@meta.data)))
    object@reductions[[i]] <- value
  } else {
    object@meta.data[[i]] <- value[rownames(object@meta.data)]
  }
  object
}

# CellBench normalised with SCTransform per batch, as Seurat 4 users do it (SplitObject, SCTransform,
# merge): an SCTAssay "SCT" with one SCT model per batch, its counts SCTransform's corrected counts.
cellbench_sct <- function() {
  obj <- cellbench_v4()
  parts <- Seurat::SplitObject(obj, split.by = "batch")
  parts <- lapply(parts, function(o) suppressWarnings(Seurat::SCTransform(o, verbose = FALSE)))
  m <- merge(parts[[1]], parts[-1])
  feats <- utils::head(rownames(m[["SCT"]]@scale.data), 300)
  Seurat::RunPCA(m, features = feats, npcs = 10, verbose = FALSE)
}

# Up to `n` features of an assay with the highest variance of log counts: the stand-in for
# FindVariableFeatures() in tests (the v5 fixtures carry no variable features).
top_features <- function(object, n = 500, assay = "RNA") {
  a <- object@assays[[assay]]
  counts <- if (inherits(a, "Assay5")) {
    do.call(cbind, lapply(grep("^counts", names(a@layers), value = TRUE), function(l) v5_layer(object, l, assay)))
  } else {
    a@counts
  }
  lc <- log1p(counts)
  v <- Matrix::rowMeans(lc^2) - Matrix::rowMeans(lc)^2
  names(sort(v, decreasing = TRUE))[seq_len(min(n, length(v)))]
}
