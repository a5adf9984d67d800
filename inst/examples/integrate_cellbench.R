# Integrate the bundled CellBench data (5 batches, 5 cell lines) with scVI from R, and save UMAPs
# before and after integration, coloured by cell line and by batch.
#
#   Rscript inst/examples/integrate_cellbench.R [output folder] [max_epochs]
#
# Defaults: results/r_example, and scvi-tools' epoch rule (400 epochs for these 1,408 cells; a few
# minutes on 2 CPU cores). Needs the set-up's Python (`make setup` in the repository), Seurat and
# SeuratObject. Run from the repository root after `make setup`, or anywhere with
# options(pyscvibridge.python = ...) / PYSCVIBRIDGE_PYTHON pointing to that Python.

args <- commandArgs(trailingOnly = TRUE)
out_dir <- if (length(args) >= 1) args[[1]] else file.path("results", "r_example")
max_epochs <- if (length(args) >= 2) as.integer(args[[2]]) else NULL

suppressPackageStartupMessages({
  library(pyscvibridge)
  library(SeuratObject)
  library(Seurat)
})
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)
message("Python: ", scvi_python())

# 1. The data, as a Seurat object (counts in the RNA assay; metadata batch, cell_line, ...).
cb <- cellbench("Seurat")
print(cb)
print(table(batch = cb$batch, cell_line = cb$cell_line))

# 2. Before: the usual Seurat steps, with no batch correction.
cb <- NormalizeData(cb, verbose = FALSE)
cb <- FindVariableFeatures(cb, nfeatures = 2000, verbose = FALSE)
cb <- ScaleData(cb, verbose = FALSE)
cb <- RunPCA(cb, npcs = 30, verbose = FALSE)
cb <- RunUMAP(cb, dims = 1:30, reduction.name = "umap.unintegrated", reduction.key = "umapunintegrated_",
              seed.use = 0, verbose = FALSE)

# 3. scVI: one call; adds the reductions "scVI" and "umap.scVI", and provenance in @misc$scVI.
cb <- RunScVI(cb, batch_key = "batch", labels_key = "cell_line", max_epochs = max_epochs, seed = 0)
print(cb)
prov <- cb@misc$scVI
message(sprintf("scVI: %d epochs, final validation ELBO %.1f", prov$epochs_run,
                utils::tail(prov$history$elbo_validation, 1)))

# 4. Numbers: of each cell's 15 nearest neighbours, the share with its own cell line (stays high
#    when biology is kept) and with its own batch (falls as batches mix; it cannot reach 1/5, as
#    two batches hold only three of the five cell lines).
knn_share <- function(x, labels, k = 15) {
  d <- as.matrix(stats::dist(x))
  diag(d) <- Inf
  labels <- as.character(labels)
  mean(vapply(seq_len(nrow(d)), function(i) mean(labels[order(d[i, ])[seq_len(k)]] == labels[i]), 0))
}
spaces <- list(PCA = Embeddings(cb, "pca"), scVI = Embeddings(cb, "scVI"))
scores <- data.frame(
  space = names(spaces),
  same_cell_line = vapply(spaces, knn_share, 0, labels = cb$cell_line),
  same_batch = vapply(spaces, knn_share, 0, labels = cb$batch)
)
print(scores, row.names = FALSE, digits = 3)
utils::write.csv(scores, file.path(out_dir, "knn_scores.csv"), row.names = FALSE)

# 5. The plots: base graphics, one PNG with four panels.
palette_for <- function(f) {
  f <- factor(f)
  cols <- grDevices::hcl.colors(nlevels(f), "Dark 3")
  list(col = cols[as.integer(f)], levels = levels(f), cols = cols)
}
umap_panel <- function(emb, f, main) {
  p <- palette_for(f)
  graphics::plot(emb[, 1], emb[, 2], col = p$col, pch = 16, cex = 0.5, main = main,
                 xlab = "UMAP 1", ylab = "UMAP 2", axes = FALSE, frame.plot = TRUE)
  graphics::legend("topright", legend = p$levels, col = p$cols, pch = 16, cex = 0.6, bty = "n")
}
png_path <- file.path(out_dir, "umap_before_after.png")
grDevices::png(png_path, width = 1600, height = 1500, res = 150)
graphics::par(mfrow = c(2, 2), mar = c(3, 3, 3, 1), mgp = c(1.5, 0.5, 0))
before <- Embeddings(cb, "umap.unintegrated")
after <- Embeddings(cb, "umap.scVI")
umap_panel(before, cb$cell_line, "Before (PCA): cell line")
umap_panel(before, cb$batch, "Before (PCA): batch")
umap_panel(after, cb$cell_line, "After (scVI): cell line")
umap_panel(after, cb$batch, "After (scVI): batch")
invisible(grDevices::dev.off())

saveRDS(cb, file.path(out_dir, "cellbench_scvi.rds"))
message("Wrote ", png_path, ", ", file.path(out_dir, "knn_scores.csv"), " and ",
        file.path(out_dir, "cellbench_scvi.rds"))
