"""Untrusted .rds files: code carried in the file never runs; files that unpack too far are refused.

The malicious files are built here: an R call (the payload, which only creates a marker file) is
serialized where the data should be, then turned into a promise in the serialized bytes, as an
attacker would (CVE-2024-27322). The first test shows that plain readRDS() runs such a payload.
"""

from __future__ import annotations

import subprocess

import pytest

from pyscvibridge import PyscvibridgeError
from pyscvibridge.convert import read_rds
from pyscvibridge.convert._api import read_r_object

pytestmark = pytest.mark.r

# Build `obj` with `payload` (a call) where data should be, serialize it and wrap the call's bytes
# in a promise: flags (PROMSXP = 5, with its environment), the global environment, an unbound
# value (not yet forced), then the call as the promise's code.
BUILD = r"""
function(obj, payload, path) {
  body <- function(x) {
    s <- serialize(x, NULL, xdr = TRUE, version = 3)
    nelen <- readBin(s[15:18], "integer", endian = "big")
    s[(19 + nelen):length(s)]
  }
  whole <- serialize(obj, NULL, xdr = TRUE, version = 3)
  code <- body(payload)
  n <- length(code)
  at <- NA
  for (i in seq_len(length(whole) - n + 1)) {
    if (whole[i] == code[1] && identical(whole[i:(i + n - 1)], code)) { at <- i; break }
  }
  if (is.na(at)) stop("payload not found in the serialized object")
  promise <- c(writeBin(c(5L + 1024L, 253L, 252L), raw(), endian = "big"), code)
  out <- c(whole[seq_len(at - 1)], promise, whole[(at + n):length(whole)])
  con <- gzfile(path, "wb")
  writeBin(out, con)
  close(con)
  invisible(path)
}
"""


@pytest.fixture
def build(r, marker):
    """build(code, path): evaluate R ``code`` (``payload`` is the call) and write it with the promise.

    Everything happens in R: an R call handed over from Python would be evaluated as an argument.
    """

    def _build(code: str, path) -> None:
        r(
            f"""
            local({{
              payload <- quote(file.create({str(marker)!r}))
              obj <- local({{ {code} }})
              ({BUILD})(obj, payload, {str(path)!r})
            }})
            """
        )
        assert not marker.exists()

    return _build


@pytest.fixture
def marker(tmp_path):
    """The file the payload would create."""
    return tmp_path / "payload-ran"


def _refused(path, marker, *where):
    with pytest.raises(PyscvibridgeError) as info:
        read_rds(path)
    text = str(info.value)
    assert "refusing to read" in text
    assert "CVE-2024-27322" in text
    assert "R before 4.4.0" in text
    assert "trust=True" in text
    for w in where:
        assert w in text
    assert not marker.exists()
    return text


@pytest.mark.slow
def test_plain_readrds_runs_the_payload(build, tmp_path, marker):
    """The exploit is real: R's own readRDS() then any use of the object creates the marker."""
    path = tmp_path / "top.rds"
    build("payload", path)
    script = f"x <- readRDS({str(path)!r}); invisible(x)"
    subprocess.run(["Rscript", "-e", script], check=True, capture_output=True)
    assert marker.exists()


def test_promise_at_top_level(build, tmp_path, marker):
    path = tmp_path / "top.rds"
    build("payload", path)
    _refused(path, marker, "promise at (the object itself)")
    with pytest.raises(PyscvibridgeError, match="refusing to read"):
        read_r_object(path)
    assert not marker.exists()


def test_promise_as_a_metadata_column(build, tmp_path, marker, pbmc_small_path):
    path = tmp_path / "meta.rds"
    build(
        f"""
        o <- readRDS({str(pbmc_small_path)!r})
        md <- o@meta.data
        oldClass(md) <- NULL
        md[["evil"]] <- payload
        oldClass(md) <- "data.frame"
        attr(o, "meta.data") <- md
        o
        """,
        path,
    )
    _refused(path, marker, "promise at @meta.data$evil")


def test_promise_as_an_assay5_layer(build, tmp_path, marker, pbmc_small_path):
    path = tmp_path / "layer.rds"
    build(
        f"""
        o <- readRDS({str(pbmc_small_path)!r})
        a <- o@assays$RNA
        layers <- attr(a, "layers")
        layers[["counts"]] <- payload
        attr(a, "layers") <- layers
        assays <- attr(o, "assays")
        assays[["RNA"]] <- a
        attr(o, "assays") <- assays
        o
        """,
        path,
    )
    _refused(path, marker, "promise at @assays$RNA@layers$counts")


def test_promise_in_sce_metadata(build, tmp_path, marker):
    path = tmp_path / "sce.rds"
    build(
        """
        suppressMessages(library(SingleCellExperiment))
        sce <- SingleCellExperiment(list(counts = matrix(rpois(20, 2), 4, 5)))
        S4Vectors::metadata(sce)$note <- payload
        sce
        """,
        path,
    )
    _refused(path, marker, "promise at @metadata$note")


def test_active_binding_in_an_environment(r, tmp_path, marker):
    path = tmp_path / "active.rds"
    r(
        f"""
        suppressMessages(library(SingleCellExperiment))
        sce <- SingleCellExperiment(list(counts = matrix(rpois(20, 2), 4, 5)))
        e <- new.env()
        makeActiveBinding("x", function() file.create({str(marker)!r}), e)
        S4Vectors::metadata(sce)$cache <- e
        saveRDS(sce, {str(path)!r})
        """
    )
    assert not marker.exists()
    _refused(path, marker, "active binding at @metadata$cache$x")


def test_closure_and_call_where_data_is_expected(r, tmp_path, marker):
    path = tmp_path / "closure.rds"
    r(
        f"""
        suppressMessages(library(SingleCellExperiment))
        sce <- SingleCellExperiment(list(counts = matrix(rpois(20, 2), 4, 5)))
        S4Vectors::metadata(sce)$f <- function() file.create({str(marker)!r})
        S4Vectors::metadata(sce)$call <- quote(file.create({str(marker)!r}))
        saveRDS(sce, {str(path)!r})
        """
    )
    text = _refused(path, marker, "closure at @metadata$f", "language at @metadata$call")
    assert "(closure, language)" in text


def test_trust_reads_the_file(r, tmp_path):
    """trust=True reads a file with a call in its metadata (an SCE otherwise intact)."""
    path = tmp_path / "trusted.rds"
    r(
        f"""
        suppressMessages(library(SingleCellExperiment))
        sce <- SingleCellExperiment(list(counts = matrix(rpois(20, 2), 4, 5,
                                    dimnames = list(paste0("g", 1:4), paste0("c", 1:5)))))
        S4Vectors::metadata(sce)$model <- quote(lm(y ~ x))
        saveRDS(sce, {str(path)!r})
        """
    )
    with pytest.raises(PyscvibridgeError, match=r"language at @metadata\$model"):
        read_rds(path)
    adata = read_rds(path, trust=True)
    assert adata.shape == (5, 4)
    assert list(adata.obs_names) == [f"c{i}" for i in range(1, 6)]


def test_fixtures_and_formulas_are_not_refused(r, tmp_path, fixtures_dir):
    """Every bundled fixture, pbmc_small and an SCE (with a formula in metadata) read without trust."""
    for path in sorted(fixtures_dir.glob("*.rds")):
        assert read_r_object(path) is not None
    path = tmp_path / "sce.rds"
    r(
        f"""
        suppressMessages(library(SingleCellExperiment))
        so <- SeuratObject::pbmc_small
        saveRDS(so, {str(tmp_path / "pbmc.rds")!r})
        sce <- SingleCellExperiment(list(counts = as.matrix(so@assays$RNA@counts)))
        S4Vectors::metadata(sce)$design <- ~ batch + condition
        saveRDS(sce, {str(path)!r})
        """
    )
    assert read_rds(tmp_path / "pbmc.rds").n_obs == 80
    assert read_rds(path).n_obs == 80


def test_size_limit(tmp_path, fixtures_dir, monkeypatch):
    """A file unpacking to more than the limit is refused, naming the limit and how to raise it."""
    path = tmp_path / "big.rds"
    path.write_bytes((fixtures_dir / "pbmc_small_v5.rds").read_bytes())
    with pytest.raises(PyscvibridgeError, match=r"unpacks to more than 1,000 bytes.*max_bytes=") as info:
        read_rds(path, max_bytes=1000)
    assert "PYSCVIBRIDGE_RDS_MAX_BYTES" in str(info.value)
    monkeypatch.setenv("PYSCVIBRIDGE_RDS_MAX_BYTES", "5000")
    with pytest.raises(PyscvibridgeError, match=r"more than 5,000 bytes"):
        read_rds(path)
    monkeypatch.setenv("PYSCVIBRIDGE_RDS_MAX_BYTES", "1e9")
    assert read_rds(path).n_obs == 80


def test_default_size_limit(tmp_path):
    """Default: 1 GiB for small files, 100 x the size on disk for larger ones."""
    from pyscvibridge.convert._safety import size_limit

    small = tmp_path / "small.rds"
    small.write_bytes(bytes(1000))
    assert size_limit(small) == 1 << 30
    large = tmp_path / "large.rds"
    with large.open("wb") as f:
        f.truncate(20_000_000)  # sparse: no disk used
    assert size_limit(large) == 2_000_000_000
    assert size_limit(large, 5) == 5


def test_missing_r_package_refuses_without_trust(monkeypatch, pbmc_small_path):
    from pyscvibridge.convert import _safety

    monkeypatch.setattr(_safety, "_routine", lambda: None)
    with pytest.raises(PyscvibridgeError, match=r"cannot check .*`R CMD INSTALL .* trust=True"):
        read_rds(pbmc_small_path)
    assert read_rds(pbmc_small_path, trust=True).n_obs == 80


@pytest.mark.slow
def test_cli_inspect_refuses_a_malicious_file(build, tmp_path, marker, pbmc_small_path):
    """`pyscvibridge inspect` (and every command reading .rds) exits 1 with the message; nothing runs."""
    from click.testing import CliRunner

    from pyscvibridge.cli import cli

    path = tmp_path / "meta.rds"
    build(
        f"""
        o <- readRDS({str(pbmc_small_path)!r})
        md <- o@meta.data
        oldClass(md) <- NULL
        md[["evil"]] <- payload
        oldClass(md) <- "data.frame"
        attr(o, "meta.data") <- md
        o
        """,
        path,
    )
    for args in (["inspect", str(path)], ["convert", str(path), str(tmp_path / "out.h5ad")]):
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 1, res.output
        assert "CVE-2024-27322" in res.output
        assert "Traceback" not in res.output
        assert not marker.exists()
    assert not (tmp_path / "out.h5ad").exists()


def test_sce_duplicated_genes_hint_says_rownames(r, tmp_path):
    path = tmp_path / "dups.rds"
    r(
        f"""
        suppressMessages(library(SingleCellExperiment))
        m <- matrix(rpois(20, 2), 4, 5, dimnames = list(c("g1", "g1", "g2", "g3"), paste0("c", 1:5)))
        saveRDS(SingleCellExperiment(list(counts = m)), {str(path)!r})
        """
    )
    with pytest.raises(
        PyscvibridgeError, match=r"duplicated feature names .*rownames\(sce\) <- make\.unique"
    ):
        read_rds(path)


def test_environments_of_data_are_walked_not_refused(r, tmp_path):
    """An environment holding data is read; 10,001 of them are refused (the walk stays bounded)."""
    ok, many = tmp_path / "env.rds", tmp_path / "envs.rds"
    r(
        f"""
        suppressMessages(library(SingleCellExperiment))
        sce <- SingleCellExperiment(list(counts = matrix(rpois(20, 2), 4, 5,
                                    dimnames = list(paste0("g", 1:4), paste0("c", 1:5)))))
        e <- new.env()
        assign("x", 1:3, envir = e)
        S4Vectors::metadata(sce)$cache <- e
        saveRDS(sce, {str(ok)!r})
        S4Vectors::metadata(sce)$cache <- lapply(1:10001, function(i) new.env(parent = emptyenv()))
        saveRDS(sce, {str(many)!r})
        """
    )
    assert read_rds(ok).n_obs == 5
    with pytest.raises(PyscvibridgeError, match="more than 10000 environments"):
        read_rds(many)
