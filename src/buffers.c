/* Numeric vectors whose memory R's allocator does not hand out (ALTREP classes over malloc'd
 * buffers), so that Python can copy a large matrix into R at the speed of a plain memory copy.
 *
 * Why: R runs a garbage collection before it allocates a large vector that does not fit its
 * vector heap, escalating to a full collection when the heap is too small. With Seurat and
 * Bioconductor loaded a full collection takes about a second (millions of live objects), several
 * times the cost of copying a 40M non-zero count matrix. A buffer vector is an ALTREP object: R
 * allocates only its small header, the data live in a malloc'd buffer, freed by a finalizer when R
 * collects the vector. To R code it is an ordinary double or integer vector: it can be read,
 * modified (R duplicates shared vectors as usual), subset and serialized (saveRDS writes a plain
 * vector, so files do not need this package to be read).
 *
 * Layout of a buffer vector: data1 = an external pointer to the buffer (its tag: the size in bytes),
 * data2 = the length as a double. Python (pyscvibridge.convert) calls pysb_buffer_vector through
 * .Call and fills the buffer through DATAPTR.
 */
#define _DEFAULT_SOURCE /* posix_memalign and MADV_HUGEPAGE under a strict C standard too */
#include <stdlib.h>
#include <string.h>

#include <R.h>
#include <Rinternals.h>
#include <R_ext/Altrep.h>
#include <R_ext/Rdynload.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

static R_altrep_class_t buffer_double_class;
static R_altrep_class_t buffer_integer_class;
static double live_bytes = 0; /* bytes held by buffers not yet freed (for tests) */

#define HUGE_PAGE ((size_t) 1 << 21)

/* A buffer of nbytes; above a few huge pages, 2 MiB-aligned with transparent huge pages asked for:
 * filling 320 MB of 4 KiB pages costs ~80,000 page faults, several times the copy itself. */
static void *buffer_alloc(size_t nbytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (nbytes >= 4 * HUGE_PAGE) {
    void *p = NULL;
    size_t rounded = (nbytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    if (posix_memalign(&p, HUGE_PAGE, rounded) != 0) return NULL;
    madvise(p, rounded, MADV_HUGEPAGE); /* a hint: its failure changes nothing */
    return p;
  }
#endif
  return malloc(nbytes);
}

static void buffer_finalize(SEXP ptr) {
  void *p = R_ExternalPtrAddr(ptr);
  if (p == NULL) return;
  live_bytes -= REAL(R_ExternalPtrTag(ptr))[0];
  free(p);
  R_ClearExternalPtr(ptr);
}

static void *buffer_data(SEXP x) { return R_ExternalPtrAddr(R_altrep_data1(x)); }

static R_xlen_t buffer_length(SEXP x) { return (R_xlen_t) REAL(R_altrep_data2(x))[0]; }

static void *buffer_dataptr(SEXP x, Rboolean writable) { return buffer_data(x); }

static const void *buffer_dataptr_or_null(SEXP x) { return buffer_data(x); }

static Rboolean buffer_inspect(SEXP x, int pre, int deep, int pvec,
                               void (*inspect_subtree)(SEXP, int, int, int)) {
  Rprintf(" pyscvibridge buffer (length %.0f, %s)\n", (double) buffer_length(x),
          TYPEOF(x) == REALSXP ? "double" : "integer");
  return TRUE;
}

static double buffer_real_elt(SEXP x, R_xlen_t i) { return ((double *) buffer_data(x))[i]; }

static int buffer_integer_elt(SEXP x, R_xlen_t i) { return ((int *) buffer_data(x))[i]; }

static R_xlen_t region(SEXP x, R_xlen_t i, R_xlen_t n, void *buf, size_t width) {
  R_xlen_t len = buffer_length(x);
  R_xlen_t k = (i >= len) ? 0 : (len - i < n ? len - i : n);
  if (k > 0) memcpy(buf, (char *) buffer_data(x) + (size_t) i * width, (size_t) k * width);
  return k;
}

static R_xlen_t buffer_real_region(SEXP x, R_xlen_t i, R_xlen_t n, double *buf) {
  return region(x, i, n, buf, sizeof(double));
}

static R_xlen_t buffer_integer_region(SEXP x, R_xlen_t i, R_xlen_t n, int *buf) {
  return region(x, i, n, buf, sizeof(int));
}

/* .Call entry: a new, uninitialised buffer vector; type "double" or "integer", length a double. */
SEXP pysb_buffer_vector(SEXP type, SEXP length) {
  if (!isString(type) || XLENGTH(type) != 1) error("type must be \"double\" or \"integer\"");
  const char *t = CHAR(STRING_ELT(type, 0));
  int is_double = strcmp(t, "double") == 0;
  if (!is_double && strcmp(t, "integer") != 0) error("type must be \"double\" or \"integer\", not \"%s\"", t);
  double n = asReal(length);
  if (ISNAN(n) || n < 0 || n > (double) R_XLEN_T_MAX) error("length must be a non-negative number");
  size_t width = is_double ? sizeof(double) : sizeof(int);
  double nbytes = n * (double) width;
  void *p = buffer_alloc(n > 0 ? (size_t) nbytes : width);
  if (p == NULL) error("cannot allocate a buffer of %.0f bytes", nbytes);
  live_bytes += nbytes;
  SEXP tag = PROTECT(ScalarReal(nbytes));
  SEXP ptr = PROTECT(R_MakeExternalPtr(p, tag, R_NilValue));
  R_RegisterCFinalizerEx(ptr, buffer_finalize, FALSE);
  SEXP len = PROTECT(ScalarReal(n));
  SEXP x = R_new_altrep(is_double ? buffer_double_class : buffer_integer_class, ptr, len);
  UNPROTECT(3);
  return x;
}

/* .Call entry: bytes held by buffers not yet freed by R's garbage collector. */
SEXP pysb_buffer_bytes(void) { return ScalarReal(live_bytes); }

static void set_common_methods(R_altrep_class_t cls) {
  R_set_altrep_Length_method(cls, buffer_length);
  R_set_altrep_Inspect_method(cls, buffer_inspect);
  R_set_altvec_Dataptr_method(cls, buffer_dataptr);
  R_set_altvec_Dataptr_or_null_method(cls, buffer_dataptr_or_null);
}

SEXP pysb_read_rds_checked(SEXP con, SEXP limit, SEXP keep); /* rds_safety.c */

static const R_CallMethodDef call_methods[] = {
  {"pysb_buffer_vector", (DL_FUNC) &pysb_buffer_vector, 2},
  {"pysb_buffer_bytes", (DL_FUNC) &pysb_buffer_bytes, 0},
  {"pysb_read_rds_checked", (DL_FUNC) &pysb_read_rds_checked, 3},
  {NULL, NULL, 0}
};

void R_init_pyscvibridge(DllInfo *dll) {
  R_registerRoutines(dll, NULL, call_methods, NULL, NULL);
  R_useDynamicSymbols(dll, FALSE);

  buffer_double_class = R_make_altreal_class("pysb_buffer_double", "pyscvibridge", dll);
  set_common_methods(buffer_double_class);
  R_set_altreal_Elt_method(buffer_double_class, buffer_real_elt);
  R_set_altreal_Get_region_method(buffer_double_class, buffer_real_region);

  buffer_integer_class = R_make_altinteger_class("pysb_buffer_integer", "pyscvibridge", dll);
  set_common_methods(buffer_integer_class);
  R_set_altinteger_Elt_method(buffer_integer_class, buffer_integer_elt);
  R_set_altinteger_Get_region_method(buffer_integer_class, buffer_integer_region);
}
