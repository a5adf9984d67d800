#' CellBench: a real data set with five batches and five known cell lines
#'
#' The CellBench cell-line mixtures bundled with the pyscvibridge Python package (Tian et al.
#' 2019, *Nature Methods* 16, 479-487; github.com/LuyiTian/sc_mixology): 1,408 cells x 11,533
#' genes profiled with CEL-seq2 (four plates / runs) and Drop-seq. Cell metadata: `batch` (5
#' levels, the protocol run), `protocol`, `cell_line` (from each cell's genotype, so a true label),
#' `demuxlet_cls`, `total_count_per_cell`, `outlier`. Raw UMI counts; genes are Ensembl IDs.
#'
#' The data are read by Python and built in R by the package's converter, so this needs the same
#' Python as [RunScVI()] (see [scvi_python()]).
#'
#' @param class `"Seurat"` (a Seurat object of the installed SeuratObject version, counts in the
#'   `RNA` assay) or `"SingleCellExperiment"` (assay `counts`).
#' @param verbose Say what is loaded.
#' @return A Seurat object or a SingleCellExperiment.
#' @export
#' @examples
#' if (scvi_available()) {
#'   cb <- cellbench("SingleCellExperiment")
#'   table(SummarizedExperiment::colData(cb)$batch)
#' }
cellbench <- function(class = c("Seurat", "SingleCellExperiment"), verbose = FALSE) {
  class <- match.arg(class)
  .check_flag(verbose, "verbose")
  if (class == "Seurat") {
    .need_packages("SeuratObject")
  } else {
    .need_packages(c("SingleCellExperiment", "SummarizedExperiment"))
  }
  kind <- if (class == "Seurat") "seurat" else "sce"
  .call_door("load_cellbench", NULL, list(kind = kind), verbose = verbose, call = environment())$result
}
