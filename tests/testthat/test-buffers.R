# Buffer vectors (src/buffers.c): what Python's AnnData -> R conversion copies matrices into. To R
# code they must behave as ordinary double and integer vectors.

buffer <- function(type, values) {
  x <- .Call(pyscvibridge:::pysb_buffer_vector, type, length(values))
  x[seq_along(values)] <- values # fills the buffer in place (x is not shared yet)
  x
}

live_bytes <- function() .Call(pyscvibridge:::pysb_buffer_bytes)

is_buffer <- function(x) any(grepl("pyscvibridge buffer", utils::capture.output(.Internal(inspect(x)))))

test_that("buffer vectors read, subset, compute and print as ordinary vectors", {
  x <- buffer("double", c(1.5, NA, -3, 4e10))
  i <- buffer("integer", c(7L, NA, 9L))
  expect_type(x, "double")
  expect_type(i, "integer")
  expect_true(is_buffer(x))
  expect_identical(x, c(1.5, NA, -3, 4e10))
  expect_identical(i, c(7L, NA, 9L))
  expect_identical(x[c(4, 1)], c(4e10, 1.5))
  expect_identical(is.na(i), c(FALSE, TRUE, FALSE))
  expect_identical(sum(x, na.rm = TRUE), 1.5 - 3 + 4e10)
  expect_identical(rev(i), c(9L, NA, 7L))
  expect_length(buffer("double", numeric(0)), 0)
})

test_that("a shared buffer vector is copied on modify, never changed behind its other names", {
  x <- buffer("double", c(1, 2, 3))
  expect_true(is_buffer(x))
  y <- x
  y[2] <- 20
  expect_identical(x, c(1, 2, 3))
  expect_identical(y, c(1, 20, 3))
})

test_that("saved buffer vectors are plain vectors in the file", {
  m <- Matrix::sparseMatrix(i = c(1L, 3L), j = c(1L, 2L), x = c(5, 6), dims = c(3L, 2L))
  m@x <- buffer("double", m@x)
  m@i <- buffer("integer", m@i)
  path <- withr::local_tempfile(fileext = ".rds")
  saveRDS(m, path)
  back <- readRDS(path)
  expect_identical(back, m)
  expect_true(is_buffer(m@x))
  expect_false(is_buffer(back@x))
})

test_that("R frees a buffer when it collects its vector", {
  invisible(gc())
  before <- live_bytes()
  x <- buffer("double", as.numeric(1:1000))
  expect_identical(live_bytes() - before, 8000)
  rm(x)
  invisible(gc())
  expect_identical(live_bytes(), before)
})

test_that("bad types and lengths are errors", {
  expect_error(.Call(pyscvibridge:::pysb_buffer_vector, "character", 2), "\"double\" or \"integer\"")
  expect_error(.Call(pyscvibridge:::pysb_buffer_vector, "double", -1), "non-negative")
  expect_error(.Call(pyscvibridge:::pysb_buffer_vector, "double", NA_real_), "non-negative")
})
