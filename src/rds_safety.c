/* Reading an .rds file without running code that it carries.
 *
 * R before 4.4.0 (CVE-2024-27322) unserializes promises: an object whose value is computed by an
 * R expression the first time it is used. readRDS() returns such an object without running it,
 * but the first use (x <- readRDS(f); x, or any slot or column access, or passing it to .Call)
 * evaluates the expression, which can run any command. Active bindings (a function run whenever a
 * variable is read) do the same from inside an environment.
 *
 * pysb_read_rds_checked() unserializes a stream from an open binary connection (gzfile() reads
 * gzip, bzip2, xz and uncompressed files) straight into C, counting the bytes it reads against a
 * limit (the stream is read in chunks, so the check costs no second pass), then walks the object graph by reading R's structures only (no evaluation, no variable
 * look-up that could force a promise or call an active binding) and reports what it finds:
 *
 *   kind              refused?   why
 *   promise           always     forcing it runs the expression (the CVE)
 *   active binding    always     reading the variable calls the function
 *   closure           always     code where data is expected (Seurat and SCE objects carry none)
 *   bytecode          always     compiled code
 *   builtin           always     a function
 *   language          always     a call, unless it is a formula (class "formula", a `~` call)
 *   expression        always     code
 *   external pointer  always     none in Seurat / SCE data; a file can only hold a NULL one
 *   weak reference    always     as above
 *   over 10,000 environments, or nesting deeper than 5,000 levels: refused (the walk would be slow
 *   or overflow the C stack; Seurat and SCE objects hold a few environments)
 *
 * Formulas (`~ x` with class "formula") are allowed: evaluating one returns itself, and model
 * results keep them. Environments are walked (their frames and hash tables, their enclosures and
 * attributes); the global, base and empty environments, package environments and namespaces are
 * the running session's own (the file holds only a reference to them), so the walk stops there.
 * The object is returned to the caller only when the walk finds nothing or keep = TRUE.
 */
#include <string.h>

#include <R.h>
#include <Rinternals.h>

#define MAX_FINDINGS 20
#define MAX_DEPTH 5000
#define PATH_LEN 512
#define MAX_ENVS 10000 /* environments are looked up in a list; Seurat / SCE objects hold a few */

/* ---------------------------------------------------------------- reading, with a byte limit */

/* The stream comes from R's readBin() on the connection, a chunk at a time (R's API has no C
 * reader for connections), and is counted against the limit before each copy. */
#define CHUNK (1 << 20)

typedef struct {
  SEXP call;    /* readBin(con, "raw", CHUNK) */
  SEXP holder;  /* a protected list holding the current chunk */
  R_xlen_t pos; /* next byte of the chunk */
  double read;  /* bytes read so far (uncompressed) */
  double limit; /* error when read exceeds this */
} stream_state;

static void read_exact(stream_state *st, void *buf, size_t n) {
  if (st->read + (double) n > st->limit)
    error("the uncompressed .rds stream is larger than the limit of %.0f bytes", st->limit);
  char *out = (char *) buf;
  while (n > 0) {
    SEXP chunk = VECTOR_ELT(st->holder, 0);
    if (st->pos >= XLENGTH(chunk)) {
      chunk = eval(st->call, R_BaseEnv);
      if (TYPEOF(chunk) != RAWSXP || XLENGTH(chunk) == 0)
        error("the file ends early: it is truncated or not an .rds file");
      SET_VECTOR_ELT(st->holder, 0, chunk);
      st->pos = 0;
    }
    size_t k = (size_t) (XLENGTH(chunk) - st->pos);
    if (k > n) k = n;
    memcpy(out, RAW(chunk) + st->pos, k);
    st->pos += (R_xlen_t) k;
    out += k;
    n -= k;
  }
  st->read += (double) (out - (char *) buf);
}

static int in_char(R_inpstream_t stream) {
  unsigned char c;
  read_exact((stream_state *) stream->data, &c, 1);
  return c;
}

static void in_bytes(R_inpstream_t stream, void *buf, int length) {
  read_exact((stream_state *) stream->data, buf, (size_t) length);
}

/* ---------------------------------------------------------------- the walk */

typedef struct {
  SEXP *envs; /* environments seen (cycles) */
  int n_envs, cap_envs;
  char found[MAX_FINDINGS][PATH_LEN + 48];
  int n_found;
  int total_found;
  int in_call; /* inside a reported call: its sub-calls are not reported again */
  char path[PATH_LEN];
  size_t path_len;
} walk_state;

static void report(walk_state *w, const char *kind) {
  w->total_found++;
  if (w->n_found >= MAX_FINDINGS) return;
  snprintf(w->found[w->n_found++], sizeof w->found[0], "%s\t%s", kind,
           w->path_len ? w->path : "(the object itself)");
}

/* Append a path segment; returns the old length to restore. */
static size_t push(walk_state *w, const char *fmt, const char *name, long index) {
  size_t old = w->path_len;
  if (old < PATH_LEN - 1) {
    int k = name ? snprintf(w->path + old, PATH_LEN - old, fmt, name)
                 : snprintf(w->path + old, PATH_LEN - old, fmt, index);
    if (k > 0) w->path_len = old + (size_t) k < PATH_LEN - 1 ? old + (size_t) k : PATH_LEN - 1;
  }
  return old;
}

static void pop(walk_state *w, size_t old) {
  w->path_len = old;
  w->path[old] = '\0';
}

static const char *sym_name(SEXP tag) {
  if (TYPEOF(tag) == SYMSXP) return CHAR(PRINTNAME(tag));
  return NULL;
}

static int seen_env(walk_state *w, SEXP env) {
  for (int i = 0; i < w->n_envs; i++)
    if (w->envs[i] == env) return 1;
  if (w->n_envs == w->cap_envs) { /* R_alloc: freed when the .Call returns */
    int cap = w->cap_envs ? 2 * w->cap_envs : 16;
    SEXP *grown = (SEXP *) R_alloc((size_t) cap, sizeof(SEXP));
    if (w->n_envs) memcpy(grown, w->envs, (size_t) w->n_envs * sizeof(SEXP));
    w->envs = grown;
    w->cap_envs = cap;
  }
  w->envs[w->n_envs++] = env;
  return 0;
}

static int is_formula(SEXP x) {
  SEXP cls = getAttrib(x, R_ClassSymbol);
  if (TYPEOF(cls) != STRSXP) return 0;
  for (R_xlen_t i = 0; i < XLENGTH(cls); i++)
    if (strcmp(CHAR(STRING_ELT(cls, i)), "formula") == 0) return 1;
  return 0;
}

static void walk(walk_state *w, SEXP x, int depth);

/* Attributes: slots of S4 objects ("@name"), attributes otherwise ("attr(,'name')"). */
static void walk_attributes(walk_state *w, SEXP x, int depth) {
  int s4 = IS_S4_OBJECT(x);
  for (SEXP a = ATTRIB(x); a != R_NilValue && TYPEOF(a) == LISTSXP; a = CDR(a)) {
    const char *name = sym_name(TAG(a));
    size_t old = push(w, s4 ? "@%s" : "attr(,'%s')", name ? name : "?", 0);
    walk(w, CAR(a), depth + 1);
    pop(w, old);
  }
}

static void walk_frame(walk_state *w, SEXP env, SEXP frame, int depth) {
  for (SEXP cell = frame; cell != R_NilValue && TYPEOF(cell) == LISTSXP; cell = CDR(cell)) {
    const char *name = sym_name(TAG(cell));
    size_t old = push(w, "$%s", name ? name : "?", 0);
    /* The binding cell itself says whether it is active (R_BindingIsActive looks the symbol up
     * in this frame only, and calls nothing). CAR(cell) is then the function, not a value. */
    if (TYPEOF(TAG(cell)) == SYMSXP && R_BindingIsActive(TAG(cell), env)) {
      report(w, "active binding");
    } else {
      walk(w, CAR(cell), depth + 1);
    }
    pop(w, old);
  }
}

static void walk_env(walk_state *w, SEXP env, int depth) {
  if (env == R_GlobalEnv || env == R_BaseEnv || env == R_EmptyEnv || env == R_BaseNamespace ||
      R_IsNamespaceEnv(env) || R_IsPackageEnv(env))
    return; /* the session's own: the file holds a reference, not the contents */
  if (seen_env(w, env)) return;
  if (w->n_envs > MAX_ENVS) {
    report(w, "more than 10000 environments");
    return;
  }
  SEXP table = HASHTAB(env);
  if (TYPEOF(table) == VECSXP) {
    for (R_xlen_t i = 0; i < XLENGTH(table); i++) walk_frame(w, env, VECTOR_ELT(table, i), depth);
  } else {
    walk_frame(w, env, FRAME(env), depth);
  }
  size_t old = push(w, "%s", "<enclosure>", 0);
  walk(w, ENCLOS(env), depth + 1);
  pop(w, old);
  walk_attributes(w, env, depth);
}

static void walk(walk_state *w, SEXP x, int depth) {
  if (depth > MAX_DEPTH) {
    report(w, "nesting deeper than 5000 levels");
    return;
  }
  R_CheckStack();
  switch (TYPEOF(x)) {
  case NILSXP:
  case SYMSXP:
  case CHARSXP:
    return;
  case LGLSXP:
  case INTSXP:
  case REALSXP:
  case CPLXSXP:
  case STRSXP:
  case RAWSXP:
    break; /* data: only the attributes can hide something */
  case VECSXP:
  case EXPRSXP: {
    int expr = TYPEOF(x) == EXPRSXP;
    if (expr) report(w, "expression");
    w->in_call += expr;
    SEXP names = getAttrib(x, R_NamesSymbol);
    for (R_xlen_t i = 0; i < XLENGTH(x); i++) {
      const char *name = NULL;
      if (TYPEOF(names) == STRSXP && i < XLENGTH(names) && STRING_ELT(names, i) != NA_STRING &&
          CHAR(STRING_ELT(names, i))[0])
        name = CHAR(STRING_ELT(names, i));
      size_t old = name ? push(w, "$%s", name, 0) : push(w, "[[%ld]]", NULL, (long) i + 1);
      walk(w, VECTOR_ELT(x, i), depth + 1);
      pop(w, old);
    }
    w->in_call -= expr;
    break;
  }
  case LANGSXP:
  case LISTSXP:
  case DOTSXP: {
    /* a call is looked into as a pairlist (a promise could hide in it) */
    int reported = TYPEOF(x) == LANGSXP && !w->in_call;
    if (reported && !is_formula(x)) report(w, "language"); /* a formula's terms are calls too */
    w->in_call += reported;
    long i = 0;
    for (SEXP c = x; c != R_NilValue; c = CDR(c), i++) {
      if (TYPEOF(c) != LISTSXP && TYPEOF(c) != LANGSXP && TYPEOF(c) != DOTSXP) {
        walk(w, c, depth + 1); /* an improper tail */
        break;
      }
      const char *name = sym_name(TAG(c));
      size_t old = name ? push(w, "$%s", name, 0) : push(w, "[[%ld]]", NULL, i + 1);
      walk(w, CAR(c), depth + 1);
      pop(w, old);
      if (c != x) walk_attributes(w, c, depth);
    }
    w->in_call -= reported;
    break;
  }
  case PROMSXP:
    report(w, "promise");
    return; /* never look into it: PRVALUE of an unforced promise is a marker */
  case CLOSXP:
    report(w, "closure");
    w->in_call++; /* its code is part of the closure: not reported again as calls */
    walk(w, FORMALS(x), depth + 1);
    walk(w, BODY(x), depth + 1);
    w->in_call--;
    if (TYPEOF(CLOENV(x)) == ENVSXP) walk_env(w, CLOENV(x), depth + 1);
    break;
  case SPECIALSXP:
  case BUILTINSXP:
    report(w, "builtin");
    break;
  case BCODESXP:
    report(w, "bytecode");
    return;
  case ENVSXP:
    walk_env(w, x, depth);
    return; /* walk_env did the attributes */
  case EXTPTRSXP:
    report(w, "external pointer");
    return;
  case WEAKREFSXP:
    report(w, "weak reference");
    return;
  case S4SXP:
    break;
  default:
    report(w, type2char(TYPEOF(x)));
    return;
  }
  walk_attributes(w, x, depth);
}

/* ---------------------------------------------------------------- .Call entry */

/* con: an open binary connection positioned at the start of the stream; limit: the largest
 * number of uncompressed bytes to read (a double); keep: return the object even when the walk
 * found something. Returns list(object or NULL, findings: "kind<TAB>where" strings,
 * total findings, bytes read). */
SEXP pysb_read_rds_checked(SEXP con, SEXP limit, SEXP keep) {
  stream_state st;
  st.limit = asReal(limit);
  if (ISNAN(st.limit) || st.limit <= 0) error("limit must be a positive number");
  st.call = PROTECT(lang4(install("readBin"), con, mkString("raw"), ScalarInteger(CHUNK)));
  st.holder = PROTECT(allocVector(VECSXP, 1));
  SET_VECTOR_ELT(st.holder, 0, allocVector(RAWSXP, 0));
  st.pos = 0;
  st.read = 0;
  struct R_inpstream_st in;
  R_InitInPStream(&in, (R_pstream_data_t) &st, R_pstream_any_format, in_char, in_bytes, NULL,
                  R_NilValue);
  SEXP obj = PROTECT(R_Unserialize(&in));
  SET_VECTOR_ELT(st.holder, 0, R_NilValue);

  walk_state w;
  memset(&w, 0, sizeof w);
  walk(&w, obj, 0);

  SEXP found = PROTECT(allocVector(STRSXP, w.n_found));
  for (int i = 0; i < w.n_found; i++) SET_STRING_ELT(found, i, mkCharCE(w.found[i], CE_UTF8));
  SEXP out = PROTECT(allocVector(VECSXP, 4));
  SET_VECTOR_ELT(out, 0, (w.total_found == 0 || asLogical(keep) == TRUE) ? obj : R_NilValue);
  SET_VECTOR_ELT(out, 1, found);
  SET_VECTOR_ELT(out, 2, ScalarInteger(w.total_found));
  SET_VECTOR_ELT(out, 3, ScalarReal(st.read));
  UNPROTECT(5);
  return out;
}
