"""R column classes survive .rds -> .h5ad -> .rds through the CLI (character stays character, ...)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyscvibridge.cli import cli

pytestmark = [pytest.mark.r, pytest.mark.slow]

N_CELLS = 8
KINDS = ["character", "factor", "ordered", "logical", "integer", "double", "Date"]
RESERVED = {"orig.ident", "nCount_RNA", "nFeature_RNA", "split_layer", "seurat_ident"}

text = st.text(
    st.characters(whitelist_categories=("Lu", "Ll", "Nd", "Zs"), whitelist_characters="_.-ü中é'\"\\"),
    min_size=0,
    max_size=6,
)
names = st.text(
    st.characters(whitelist_categories=("Lu", "Ll"), whitelist_characters="_.ü中é"), min_size=1, max_size=8
).filter(lambda s: s not in RESERVED)


def _r_str(s: str | None) -> str:
    if s is None:
        return "NA_character_"
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _maybe_na(draw, values, na_token="NA"):
    na = draw(st.lists(st.booleans(), min_size=N_CELLS, max_size=N_CELLS))
    return [na_token if m else v for v, m in zip(values, na, strict=True)]


@st.composite
def column(draw) -> tuple[str, str]:
    """(R class, an R expression making a column of N_CELLS values of that class, with NA)."""
    kind = draw(st.sampled_from(KINDS))
    if kind == "character":
        vals = _maybe_na(draw, [_r_str(v) for v in draw(st.lists(text, min_size=N_CELLS, max_size=N_CELLS))])
        return kind, f"c({', '.join(vals)})"
    if kind in ("factor", "ordered"):
        levels = draw(st.lists(text.filter(bool), min_size=1, max_size=4, unique=True))
        vals = draw(st.lists(st.sampled_from(levels), min_size=N_CELLS, max_size=N_CELLS))
        vals = _maybe_na(draw, [_r_str(v) for v in vals])
        order = draw(st.permutations(levels))  # the level order is not the sorted one
        return kind, (
            f"factor(c({', '.join(vals)}), levels = c({', '.join(map(_r_str, order))}), "
            f"ordered = {'TRUE' if kind == 'ordered' else 'FALSE'})"
        )
    if kind == "logical":
        vals = _maybe_na(
            draw, [str(b).upper() for b in draw(st.lists(st.booleans(), min_size=N_CELLS, max_size=N_CELLS))]
        )
        return kind, f"c({', '.join(vals)})"
    if kind == "integer":
        ints = draw(st.lists(st.integers(-(2**31) + 1, 2**31 - 1), min_size=N_CELLS, max_size=N_CELLS))
        vals = _maybe_na(draw, [f"{v}L" for v in ints], "NA_integer_")
        return kind, f"c({', '.join(vals)})"
    if kind == "double":
        # whole numbers too: they must stay double, not become integer
        floats = draw(
            st.lists(
                st.one_of(st.integers(-1000, 1000).map(float), st.floats(-1e6, 1e6, allow_nan=False)),
                min_size=N_CELLS,
                max_size=N_CELLS,
            )
        )
        vals = _maybe_na(draw, [repr(v) for v in floats], "NA_real_")
        return kind, f"c({', '.join(vals)})"
    days = draw(st.lists(st.integers(-20000, 30000), min_size=N_CELLS, max_size=N_CELLS))
    vals = _maybe_na(draw, [f"{d}" for d in days], "NA_real_")
    return kind, f'structure(as.double(c({", ".join(vals)})), class = "Date")'


tables = st.lists(st.tuples(names, column()), min_size=1, max_size=6, unique_by=lambda t: t[0])


def test_every_class_round_trips(r, tmp_path):
    """One column of each class, with NA, through the CLI; each comes back identical()."""
    _round_trip(
        r,
        tmp_path,
        [
            ("chr", ("character", 'c("a", NA, "ü β", "", "a", "b", "c", "d")')),
            (
                "fac",
                ("factor", 'factor(c("z", "x", NA, "y", "z", "z", "x", "y"), levels = c("z", "x", "y"))'),
            ),
            ("ord", ("ordered", 'factor(rep(c("lo", "hi"), 4), levels = c("lo", "hi"), ordered = TRUE)')),
            ("lgl", ("logical", "c(TRUE, NA, FALSE, FALSE, TRUE, TRUE, FALSE, TRUE)")),
            ("int", ("integer", "c(1L, NA, 3L, -4L, 5L, 6L, 7L, 2147483647L)")),
            ("dbl", ("double", "c(1, 2, NA, 4, 5.5, 6, 7, 8)")),
            ("day", ("Date", 'as.Date("2024-02-29") + c(0:6, NA)')),
        ],
    )


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=tables)
def test_random_tables_round_trip(r, tmp_path, table):
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        _round_trip(r, Path(d), table)


def _round_trip(r, folder: Path, table) -> None:
    src, h5ad, back = folder / "in.rds", folder / "out.h5ad", folder / "back.rds"
    assigns = "\n".join(f"md[[{_r_str(name)}]] <- {expr}" for name, (_, expr) in table)
    r(
        f"""
        local({{
          suppressMessages(library(SeuratObject))
          m <- Matrix::Matrix(matrix(rep(1:4, {N_CELLS * 5}), 20, {N_CELLS},
                              dimnames = list(paste0("g", 1:20), paste0("c", 1:{N_CELLS}))), sparse = TRUE)
          o <- suppressWarnings(CreateSeuratObject(m))
          md <- o@meta.data
          {assigns}
          o@meta.data <- md
          saveRDS(o, {_r_str(str(src))})
        }})
        """
    )
    runner = CliRunner()
    for a, b in ((src, h5ad), (h5ad, back)):
        res = runner.invoke(cli, ["convert", str(a), str(b)])
        assert res.exit_code == 0, res.output
    bad = r(
        f"""
        local({{
          a <- readRDS({_r_str(str(src))})@meta.data
          b <- readRDS({_r_str(str(back))})@meta.data
          out <- character(0)
          for (n in names(a)) if (!identical(a[[n]], b[[n]])) {{
            out <- c(out, paste0(n, ": ", paste(class(a[[n]]), collapse = "/"), " -> ",
                                 paste(class(b[[n]]), collapse = "/"), " ", deparse(b[[n]])))
          }}
          if (!identical(names(a), names(b))) out <- c(out, "names differ")
          out
        }})
        """
    )
    assert list(bad) == [], [(name, kind) for name, (kind, _) in table]
