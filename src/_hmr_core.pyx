# cython: language_level=3, boundscheck=False, embedsignature=True
"""The compiled core: the twin of ``muckrack_hmr/_core_py.py``.

Same public names, signatures, exceptions and iteration order as the pure
twin (the parity and differential tests hold both to it).  What differs is
how: typed node ids, C-level loops, and an import hook that calls
``PyImport_ImportModuleLevelObject`` directly and reads the caller's globals
with ``PyEval_GetGlobals`` instead of walking frames.
"""

import builtins
import sys
import threading

from cpython.dict cimport PyDict_GetItem
from cpython.module cimport PyModule_Check, PyModule_GetDict
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.tuple cimport PyTuple_GET_SIZE
from cpython.exc cimport PyErr_SetFromErrnoWithFilenameObject
from cpython.ref cimport Py_INCREF, Py_XDECREF, PyObject
from cpython.pythread cimport PyThread_get_thread_ident
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcmp, memset, strcmp
from cpython.unicode cimport PyUnicode_1BYTE_KIND, PyUnicode_DATA, PyUnicode_GET_LENGTH, PyUnicode_KIND

cdef extern from "Python.h":
    PyObject* PyImport_GetModuleDict()
    object PyImport_ImportModuleLevelObject(
        object name, object globals, object locals, object fromlist, int level
    )
    PyObject* PyEval_GetGlobals()
    bytes PyUnicode_EncodeFSDefault(object unicode)
    PyObject* PyList_GET_ITEM(object list, Py_ssize_t index)
    Py_ssize_t PyList_GET_SIZE(object list)
    void PyUnicode_InternInPlace(PyObject** text)
    Py_ssize_t PyUnicode_FindChar(object text, Py_UCS4 ch, Py_ssize_t start, Py_ssize_t end,
                                  int direction) except -2
    ctypedef int (*Py_AuditHookFunction)(const char* event, PyObject* args, void* data) except -1
    int PySys_AddAuditHook(Py_AuditHookFunction hook, void* data) except -1
    void PyObject_GC_UnTrack(object op)
    Py_UCS4 PyUnicode_READ_CHAR(object text, Py_ssize_t index)
    # The fields of a code object read here (named alike from 3.10 on).
    ctypedef struct PyCodeObject:
        int co_flags
        PyObject* co_consts
        PyObject* co_names
        PyObject* co_name

# The baseline of a project file without ``os.lstat`` and its stat_result:
# 0 for a file (its mtime in ns and size filled in, as os.stat computes
# them), 1 for a symlink, -1 when lstat fails.  Never used on Windows
# (ProjectFilter.verdicts offers no tables there).
cdef extern from *:
    """
    #if defined(_WIN32)
    static int hmr_lstat(const char *path, long long *mtime_ns, long long *size) {
        (void)path; (void)mtime_ns; (void)size;
        return -1;
    }
    #else
    #include <sys/stat.h>
    static int hmr_lstat(const char *path, long long *mtime_ns, long long *size) {
        struct stat st;
        if (lstat(path, &st) != 0) return -1;
        if (S_ISLNK(st.st_mode)) return 1;
    #if defined(__APPLE__)
        *mtime_ns = (long long)st.st_mtimespec.tv_sec * 1000000000LL + st.st_mtimespec.tv_nsec;
    #else
        *mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    #endif
        *size = (long long)st.st_size;
        return 0;
    }
    #endif
    """
    int hmr_lstat(const char* path, long long* mtime_ns, long long* size) nogil

# A project module's source, read with no write overlapping the read, in plain
# system calls and without the GIL (see capture.read_open): the bytes in a
# malloc'd buffer, the figures of the open file after the read.  Not on Windows:
# there the module's reads are the os module's (HMR_POSIX_READS is 0).
cdef extern from *:
    """
    #if defined(_WIN32)
    #define HMR_POSIX_READS 0
    static char *hmr_read_source(const char *path, int no_follow, int tries, Py_ssize_t *length,
                                 long long *sec, long long *nsec, long long *size,
                                 int *unlinked) {
        (void)path; (void)no_follow; (void)tries; (void)length; (void)sec; (void)nsec;
        (void)size; (void)unlinked;
        return NULL;
    }
    #else
    #define HMR_POSIX_READS 1
    #include <errno.h>
    #include <fcntl.h>
    #include <stdlib.h>
    #include <sys/stat.h>
    #include <unistd.h>
    #ifndef O_CLOEXEC
    #define O_CLOEXEC 0
    #endif
    static int hmr_open(const char *path, int flags) {
        int fd;
        do { fd = open(path, flags); } while (fd < 0 && errno == EINTR);
        return fd;
    }
    static ssize_t hmr_read(int fd, char *into, size_t count) {
        ssize_t got;
        do { got = read(fd, into, count); } while (got < 0 && errno == EINTR);
        return got;
    }
    /* Everything from the position to the end into *buffer (grown as needed):
       one read of expected + 1 bytes when the file is expected long. */
    static int hmr_read_all(int fd, size_t expected, char **buffer, size_t *capacity,
                            size_t *length) {
        size_t want = expected + 1;
        ssize_t got;
        if (*capacity < want) {
            char *grown = realloc(*buffer, want);
            if (grown == NULL) { errno = ENOMEM; return -1; }
            *buffer = grown;
            *capacity = want;
        }
        got = hmr_read(fd, *buffer, want);
        if (got < 0) return -1;
        *length = (size_t)got;
        if (*length <= expected) return 0;
        for (;;) {  /* grown since the fstat: read on to the end */
            if (*length == *capacity) {
                size_t more = *capacity * 2;
                char *grown = realloc(*buffer, more);
                if (grown == NULL) { errno = ENOMEM; return -1; }
                *buffer = grown;
                *capacity = more;
            }
            got = hmr_read(fd, *buffer + *length, *capacity - *length);
            if (got < 0) return -1;
            if (got == 0) return 0;
            *length += (size_t)got;
        }
    }
    static void hmr_mtime(const struct stat *st, long long *sec, long long *nsec) {
    #if defined(__APPLE__)
        *sec = (long long)st->st_mtimespec.tv_sec;
        *nsec = (long long)st->st_mtimespec.tv_nsec;
    #else
        *sec = (long long)st->st_mtim.tv_sec;
        *nsec = (long long)st->st_mtim.tv_nsec;
    #endif
    }
    /* The bytes (malloc'd, NULL with errno set on failure) and the figures after the
       last read; *unlinked when opened without following a symlink. */
    static char *hmr_read_source(const char *path, int no_follow, int tries, Py_ssize_t *length,
                                 long long *sec, long long *nsec, long long *size,
                                 int *unlinked) {
        struct stat before, after;
        char *buffer = NULL;
        size_t capacity = 0, got = 0;
        long long sec_before, nsec_before;
        int fd = -1, attempt, saved;
        *unlinked = 0;
        if (tries < 1) tries = 1;
    #ifdef O_NOFOLLOW
        if (no_follow) {
            fd = hmr_open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
            if (fd >= 0) *unlinked = 1;
        }
    #endif
        if (fd < 0) fd = hmr_open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return NULL;
        for (attempt = 0; attempt < tries; attempt++) {
            if (fstat(fd, &before) != 0) goto failed;
            if (hmr_read_all(fd, (size_t)before.st_size, &buffer, &capacity, &got) != 0)
                goto failed;
            if (fstat(fd, &after) != 0) goto failed;
            hmr_mtime(&before, &sec_before, &nsec_before);
            hmr_mtime(&after, sec, nsec);
            if (sec_before == *sec && nsec_before == *nsec && before.st_size == after.st_size)
                break;
            if (lseek(fd, 0, SEEK_SET) < 0) goto failed;
        }
        close(fd);
        *length = (Py_ssize_t)got;
        *size = (long long)after.st_size;
        return buffer;
    failed:
        saved = errno;
        close(fd);
        free(buffer);
        errno = saved;
        return NULL;
    }
    #endif
    """
    int HMR_POSIX_READS
    char* hmr_read_source(const char* path, int no_follow, int tries, Py_ssize_t* length,
                          long long* sec, long long* nsec, long long* size,
                          int* unlinked) nogil

# The wait of wait_for_quiet, in C without the GIL: 1 when the process's other
# threads used less than ``share`` of a core for ``needed`` seconds in a row, 0
# after ``longest`` seconds, -1 where the clocks are missing (Windows: the twin's
# loop runs instead).
cdef extern from *:
    """
    #if defined(_WIN32)
    #define HMR_CPU_CLOCKS 0
    static int hmr_wait_for_quiet(double longest, double look, double share, double needed) {
        (void)longest; (void)look; (void)share; (void)needed;
        return -1;
    }
    #else
    #define HMR_CPU_CLOCKS 1
    #include <errno.h>
    #include <time.h>
    static int hmr_clocks(double *wall, double *process, double *ours) {
        struct timespec t;
        if (clock_gettime(CLOCK_MONOTONIC, &t) != 0) return -1;
        *wall = (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
        if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t) != 0) return -1;
        *process = (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
        if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0) return -1;
        *ours = (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
        return 0;
    }
    static void hmr_sleep(double seconds) {
        struct timespec t;
        t.tv_sec = (time_t)seconds;
        t.tv_nsec = (long)((seconds - (double)t.tv_sec) * 1e9);
        while (nanosleep(&t, &t) != 0 && errno == EINTR) {}
    }
    static int hmr_wait_for_quiet(double longest, double look, double share, double needed) {
        double started, wall, process, ours, last_wall, last_process, last_ours;
        double remaining, elapsed, others, quiet_for = 0.0;
        if (hmr_clocks(&last_wall, &last_process, &last_ours) != 0) return -1;
        started = last_wall;
        for (;;) {
            remaining = started + longest - last_wall;
            if (remaining <= 0) return 0;
            hmr_sleep(look < remaining ? look : remaining);
            if (hmr_clocks(&wall, &process, &ours) != 0) return -1;
            elapsed = wall - last_wall;
            others = (process - last_process) - (ours - last_ours);
            last_wall = wall;
            last_process = process;
            last_ours = ours;
            if (elapsed > 0 && others < share * elapsed) {
                quiet_for += elapsed;
                if (quiet_for >= needed) return 1;
            } else {
                quiet_for = 0.0;
            }
        }
    }
    #endif
    """
    int HMR_CPU_CLOCKS
    int hmr_wait_for_quiet(double longest, double look, double share, double needed) nogil

__all__ = [
    "OP_EXTENDED",
    "OP_IMPORT",
    "OP_LOADS",
    "OP_LOAD_NAME",
    "OP_MAKES",
    "OP_PUSH_NULL",
    "OP_SHIFT",
    "WAITS_WITHOUT_GIL",
    "DependencyGraph",
    "GcGate",
    "ImportTracker",
    "add_open_audit_hook",
    "all_names",
    "called_names",
    "capture_sources",
    "loaded_names",
    "resolve_relative",
    "scan_module",
    "wait_for_quiet",
]

#: Does :func:`wait_for_quiet` look at the program without holding the GIL?  Yes,
#: where the C clocks are (not Windows).
WAITS_WITHOUT_GIL = bool(HMR_CPU_CLOCKS)


def wait_for_quiet(double longest, double look, double share, double needed):
    """Wait until the process's other threads have used less than ``share`` of a core
    for ``needed`` seconds in a row, looking every ``look`` seconds (True), or for
    ``longest`` seconds at most (False) (see the twin).  The sleeps and looks hold
    no GIL: the program's threads run on meanwhile."""
    cdef int found
    with nogil:
        found = hmr_wait_for_quiet(longest, look, share, needed)
    if found < 0:
        from muckrack_hmr._core_py import wait_for_quiet as looking_with_the_gil

        return looking_with_the_gil(longest, look, share, needed)
    return found == 1

# The table of a Python's opcodes scan_module reads bytecode with (see the twin).
OP_LOADS = 0x04
OP_IMPORT = 0x08
OP_MAKES = 0x10
OP_PUSH_NULL = 0x20
OP_LOAD_NAME = 0x40
OP_EXTENDED = 0x80
OP_SHIFT = 0x03
cdef enum:
    _LOADS = 0x04
    _IMPORT = 0x08
    _MAKES = 0x10
    _PUSH_NULL = 0x20
    _LOAD_NAME = 0x40
    _EXTENDED = 0x80
    _SHIFT = 0x03
    _CO_OPTIMIZED = 0x1
# The instructions after a LOAD_NAME in which a function or class made means a decorator.
cdef Py_ssize_t _DECORATED_WITHIN = 5
cdef object _CodeType = type(compile("", "<core>", "exec"))


cdef const unsigned char* _table_of(bytes table) except NULL:
    if len(table) != 256:
        raise ValueError("an opcode table has 256 entries")
    return <const unsigned char*>PyBytes_AS_STRING(table)


cdef inline object _name_at(tuple names, Py_ssize_t index):
    if index >= PyTuple_GET_SIZE(names):
        raise IndexError("a name's index past co_names")
    return names[index]


cdef inline bint _instruction(const unsigned char* units, Py_ssize_t at,
                              const unsigned char* table, size_t* extended,
                              unsigned char* flags, size_t* arg) noexcept:
    """The flags and argument of the instruction at ``at``; False for an EXTENDED_ARG,
    whose bits go to ``extended`` for the next one."""
    flags[0] = table[units[at]]
    arg[0] = extended[0] | units[at + 1]
    if flags[0] & _EXTENDED:
        extended[0] = arg[0] << 8
        return False
    extended[0] = 0
    return True


cdef void _loaded_into(object code, bytes raw, const unsigned char* table, unsigned char skip,
                       set found) except *:
    cdef tuple names = <tuple>(<PyCodeObject*>code).co_names
    cdef const unsigned char* units = <const unsigned char*>PyBytes_AS_STRING(raw)
    cdef Py_ssize_t size = PyBytes_GET_SIZE(raw) - 1, at
    cdef size_t extended = 0, arg
    cdef unsigned char flags
    for at in range(0, size, 2):
        if not _instruction(units, at, table, &extended, &flags, &arg):
            continue
        if flags & skip == _LOADS:
            found.add(_name_at(names, arg >> (flags & _SHIFT)))


def loaded_names(code, bytes table, bint imports):
    """The names ``code`` loads, and with ``imports`` the ones it imports (see the twin),
    decoding each instruction."""
    if type(code) is not _CodeType:
        raise TypeError("loaded_names reads a code object")
    found = set()
    _loaded_into(code, code.co_code, _table_of(table), _LOADS if imports else _LOADS | _IMPORT,
                 found)
    return found


cdef set _called(object code, bytes raw, set names, const unsigned char* table, int null_after):
    if null_after < 0:
        return set(names)
    cdef tuple table_names = <tuple>(<PyCodeObject*>code).co_names
    cdef const unsigned char* units = <const unsigned char*>PyBytes_AS_STRING(raw)
    cdef Py_ssize_t size = PyBytes_GET_SIZE(raw) - 1, at
    cdef size_t extended = 0, arg
    cdef unsigned char flags
    cdef set found = set()
    for at in range(0, size, 2):
        if not _instruction(units, at, table, &extended, &flags, &arg):
            continue
        if not flags & _LOAD_NAME:
            continue
        name = _name_at(table_names, arg)
        if name not in names or name in found:
            continue
        if _calls_at(units, at, size, table, null_after):
            found.add(name)
    return found


cdef inline bint _calls_at(const unsigned char* units, Py_ssize_t at, Py_ssize_t size,
                           const unsigned char* table, int null_after) noexcept:
    """Is what the LOAD_NAME at ``at`` loads called: by the call that a NULL pushed beside
    it prepares, or as the decorator of a function or class made within a few
    instructions?  (``null_after``: see called_names; 0 or 1 here.)"""
    cdef Py_ssize_t beside = at + 2 if null_after else at - 2, following
    while not null_after and beside >= 0 and table[units[beside]] & _EXTENDED:
        beside -= 2  # (the NULL comes before the prefixes of a name's index over 255)
    if 0 <= beside < size and table[units[beside]] & _PUSH_NULL:
        return True
    for following in range(at + 2, min(at + 2 + 2 * _DECORATED_WITHIN, size), 2):
        if table[units[following]] & _MAKES:
            return True
    return False


def called_names(code, set names, bytes table, int null_after):
    """Which of ``names``, loaded at ``code``'s level, it may call (see the twin)."""
    if type(code) is not _CodeType:
        raise TypeError("called_names reads a code object")
    return _called(code, code.co_code, names, _table_of(table), null_after)


def all_names(code, set into):
    """Every name ``code`` and the code objects it holds hold, into ``into``."""
    if type(code) is not _CodeType:
        raise TypeError("all_names reads a code object")
    _all_names(code, into)


cdef void _all_names(object code, set into) except *:
    cdef PyCodeObject* raw = <PyCodeObject*>code
    into.update(<tuple>raw.co_names)
    for const in <tuple>raw.co_consts:
        if type(const) is _CodeType:
            _all_names(const, into)


cdef inline bint _is_function(object const):
    """A code object of a function (or a comprehension, a lambda), not a class body's."""
    return (<PyCodeObject*>const).co_flags & _CO_OPTIMIZED


cdef inline bint _anonymous(object const):
    """``<lambda>``, ``<listcomp>``: a code object that makes no name of the module."""
    cdef str name = <str>(<PyCodeObject*>const).co_name
    return len(name) > 0 and PyUnicode_READ_CHAR(name, 0) == 60  # "<"


def scan_module(code, bytes table, int null_after):
    """The names a module's code loads at its level, and the code of each function it
    defines after its name, flat, in tuples (see the twin)."""
    if type(code) is not _CodeType:
        raise TypeError("scan_module reads a code object")
    cdef const unsigned char* opcodes = _table_of(table)
    cdef set defs = _defined_here(code)
    cdef set at_import = set()
    cdef list bodies = []
    _level(code, at_import, defs, bodies, opcodes, null_after)
    return tuple(at_import), tuple(bodies)


cdef enum:
    _MARK_LOADED = 1
    _MARK_CALLED = 2
    # co_names entries a level's marks fit in without a heap buffer.
    _MARKS_ON_STACK = 512


cdef void _level(object code, set at_import, set defs, list bodies,
                 const unsigned char* table, int null_after) except *:
    """What _loaded_into, _called and the set algebra of the twin's _level find, in
    one pass over the level's instructions that marks each entry of co_names."""
    cdef tuple names = <tuple>(<PyCodeObject*>code).co_names
    cdef Py_ssize_t count = PyTuple_GET_SIZE(names), index
    cdef bytes raw = code.co_code  # (made anew at each look on 3.11: once a level here)
    cdef const unsigned char* units = <const unsigned char*>PyBytes_AS_STRING(raw)
    cdef Py_ssize_t size = PyBytes_GET_SIZE(raw) - 1, at
    cdef size_t extended = 0, arg
    cdef unsigned char flags
    cdef unsigned char on_stack[_MARKS_ON_STACK]
    cdef unsigned char* marks = on_stack
    cdef set own = None
    cdef set called = None
    if count > _MARKS_ON_STACK:
        marks = <unsigned char*>calloc(count, 1)
        if marks == NULL:
            raise MemoryError()
    else:
        memset(marks, 0, count)
    try:
        for at in range(0, size, 2):
            if not _instruction(units, at, table, &extended, &flags, &arg):
                continue
            if flags & (_LOADS | _IMPORT) != _LOADS:
                continue
            index = <Py_ssize_t>(arg >> (flags & _SHIFT))
            if index >= count:
                raise IndexError("a name's index past co_names")
            if null_after < 0:  # a Python that cannot tell: any read may call
                marks[index] |= _MARK_LOADED | _MARK_CALLED
                continue
            marks[index] |= _MARK_LOADED
            if (
                flags & _LOAD_NAME
                and not marks[index] & _MARK_CALLED
                and _calls_at(units, at, size, table, null_after)
            ):
                marks[index] |= _MARK_CALLED
        if bodies is None:
            own = _defined_here(code)
        for index in range(count):
            if not marks[index]:
                continue
            name = names[index]
            if marks[index] & _MARK_CALLED:
                if own is not None and name in own:
                    if called is None:
                        called = set()
                    called.add(name)
            elif name in defs or (own is not None and name in own):
                continue  # a function only read here (put in a table) runs nothing now
            at_import.add(name)
    finally:
        if marks != on_stack:
            free(marks)
    for const in <tuple>(<PyCodeObject*>code).co_consts:
        if type(const) is not _CodeType:
            continue
        if not _is_function(const):
            _level(const, at_import, defs, None, table, null_after)
        elif _anonymous(const):
            _all_names(const, at_import)  # a comprehension runs now (a lambda may)
        elif bodies is not None:
            bodies.append(<object>(<PyCodeObject*>const).co_name)
            bodies.append(const)
        elif called is not None and <object>(<PyCodeObject*>const).co_name in called:
            _all_names(const, at_import)  # a function the class body calls (see the twin)


cdef set _defined_here(object code):
    """The functions ``code`` defines (not its lambdas or comprehensions)."""
    cdef set found = set()
    for const in <tuple>(<PyCodeObject*>code).co_consts:
        if type(const) is _CodeType and _is_function(const) and not _anonymous(const):
            found.add(<object>(<PyCodeObject*>const).co_name)
    return found


# pytest leaves out of its tracebacks the frames whose locals or globals set
# __tracebackhide__.  Ours sit between every import statement and the module
# it imports (the hook), so without it an ImportError in a test module shows
# "src/_hmr_core.pyx:611: in ...import_module ???" lines that a plain pytest
# run does not have.  A Cython frame's globals are this module's namespace,
# and it has no locals: the whole module is marked (--full-trace shows it).
__tracebackhide__ = True

cdef object _BUILTIN_IMPORT = builtins.__import__
cdef dict _UNTRACKED = {}
# Shared by project modules that remembered no statement yet (see the twin).
cdef dict _NONE_YET = {}
cdef object _MISSING = object()
# Items per waiting import statement in the graph's flat list (see the twin).
cdef Py_ssize_t _FIELDS = 6


cdef bint _spells_one(object text, list parts) except -1:
    """Does ``text`` hold one of ``parts`` (str)?  None holds "None" (as the twin reads
    it); a str of one byte a character is searched here, without a call a part."""
    cdef Py_ssize_t n, m, i
    cdef const unsigned char* data
    cdef const unsigned char* wanted
    if text is None:
        text = "None"
    elif type(text) is not str:
        text = str(text)
    n = PyUnicode_GET_LENGTH(text)
    for part in parts:
        m = PyUnicode_GET_LENGTH(part)
        if m > n:
            continue
        if PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND or PyUnicode_KIND(part) != PyUnicode_1BYTE_KIND:
            if (<str>part) in <str>text:
                return True
            continue
        data = <const unsigned char*>PyUnicode_DATA(text)
        wanted = <const unsigned char*>PyUnicode_DATA(part)
        for i in range(n - m + 1):
            if data[i] == wanted[0] and memcmp(data + i, wanted, m) == 0:
                return True
    return False
# The first item of a module's record of several statements importing one name,
# then level and fromlist of each (see the twin): one flat tuple.
cdef str _MANY = "\0several statements"


# Waiting statements past which the importing thread records them itself (see the twin).
cdef Py_ssize_t _PENDING_LIMIT = 65536 * 6
cdef str _COMMA = ","


cdef inline bint _several(object found):
    return type(found) is tuple and len(<tuple>found) > 1 and (<tuple>found)[0] is _MANY


cdef object _compact(object fromlist):
    """A ``from`` statement's names as one str, for the waiting list (see the twin's
    ImportTracker._wait)."""
    if type(fromlist) is tuple and len(<tuple>fromlist):
        try:
            return _COMMA.join(<tuple>fromlist)
        except TypeError:  # not only names: kept as it is
            return fromlist
    return fromlist
cdef object _NAME = "__name__"
cdef object _FILE = "__file__"
cdef tuple _SOURCE_SUFFIXES = (".py", ".pyw")
# Slots of the globals-identity cache of ImportTracker (a power of two).
cdef enum:
    _CACHE_SIZE = 64


def resolve_relative(str name, package, int level):
    """Resolve ``from .name import ...`` issued by ``package`` at ``level``."""
    return _resolve_relative(name, package, level)


cdef str _resolve_relative(str name, object package, int level):
    if not package:
        raise ImportError("attempted relative import with no known parent package")
    cdef Py_ssize_t end, up
    if type(package) is str and level >= 1:
        # The package less its last level - 1 parts, found from the right
        # with no list made (the twin's rsplit).
        end = len(<str>package)
        for up in range(level - 1):
            end = PyUnicode_FindChar(package, 46, 0, end, -1)  # "."
            if end < 0:
                raise ImportError("attempted relative import beyond top-level package")
        base = (<str>package)[:end] if end < len(<str>package) else <str>package
    else:
        bits = package.rsplit(".", level - 1)
        if len(bits) < level:
            raise ImportError("attempted relative import beyond top-level package")
        base = bits[0]
    return f"{base}.{name}" if name else base


cdef str _interned(str text):
    """``sys.intern(text)`` without the call (an exact str)."""
    cdef PyObject* found = <PyObject*>text
    Py_INCREF(text)  # the reference InternInPlace replaces
    PyUnicode_InternInPlace(&found)
    result = <str>found
    Py_XDECREF(found)
    return result


cdef inline bint _holds(list items, object item):
    """Is ``item`` itself in ``items``: node ids are the shared ints of ``_ids``,
    so identity is equality, without a comparison call per edge."""
    cdef PyObject* wanted = <PyObject*>item
    cdef Py_ssize_t index
    for index in range(PyList_GET_SIZE(items)):
        if PyList_GET_ITEM(items, index) == wanted:
            return True
    return False


# The listeners of add_open_audit_hook, kept alive: the process's hooks hold them.
cdef list _OPEN_LISTENERS = []


cdef int _open_event(const char* event, PyObject* args, void* listener) except -1:
    """The C audit hook of add_open_audit_hook (see the twin)."""
    if strcmp(event, b"open") != 0:
        return 0
    cdef object arguments = <object>args
    if type(arguments) is tuple and len(<tuple>arguments):
        path = (<tuple>arguments)[0]
        if type(path) is str and ((<str>path).endswith(".py") or (<str>path).endswith(".pyc")):
            return 0
    (<object>listener)(arguments)
    return 0


cdef class GcGate:
    """The collector's callback that makes a collection due in a thread of ours look at
    nothing (see the twin).  It runs no Python code: a collection in the middle of
    CPython 3.11's conversion of a parse into ``ast`` objects cannot let another thread
    in, whose parse would make that one fail."""

    cdef public object ours, freeze, unfreeze, frozen_count
    cdef public Py_ssize_t interpreter_froze
    cdef public bint skipping, held

    def __init__(self, ours, freeze, unfreeze, frozen_count, Py_ssize_t interpreter_froze):
        self.ours = ours
        self.freeze = freeze
        self.unfreeze = unfreeze
        self.frozen_count = frozen_count
        self.interpreter_froze = interpreter_froze
        self.skipping = False
        self.held = False

    def __call__(self, phase, info):
        cdef Py_ssize_t frozen
        if phase == "start":
            if PyThread_get_thread_ident() not in self.ours:
                return
            if self.held:
                self.freeze()  # (what is new waits with the rest for the thaw)
                return
            frozen = self.frozen_count()
            if frozen < self.interpreter_froze:
                self.interpreter_froze = frozen
            if frozen == self.interpreter_froze:
                self.freeze()
                self.skipping = True
        elif self.skipping:
            self.skipping = False
            self.unfreeze()
            self.interpreter_froze = 0


def add_open_audit_hook(listener):
    """Call ``listener(args)`` for each ``open`` audit event of the process (PEP 578),
    but those of a path ending in ``.py`` or ``.pyc`` (see the twin)."""
    _OPEN_LISTENERS.append(listener)
    PySys_AddAuditHook(_open_event, <void*>listener)


# -- the loader's steps for a project module's source (see the twin) -------------------


cdef class _Reading:
    """The source of one module being loaded, and its file's figures after the read."""

    cdef str path
    cdef bytes source
    cdef long long sec, nsec, size
    cdef bint unlinked
    # The bytecode cache the loader read for it (None once it read the source instead).
    cdef object cached


cdef bytes _read_file(str path, bint no_follow, int tries, _Reading into):
    """The bytes of ``path`` read as the twin's ``_Reading`` does (OSError as os.open's)."""
    cdef bytes encoded = PyUnicode_EncodeFSDefault(path)
    cdef const char* c_path = encoded
    cdef Py_ssize_t length = 0
    cdef long long sec = 0, nsec = 0, size = 0
    cdef int unlinked = 0
    cdef char* buffer
    if b"\0" in encoded:
        raise ValueError("embedded null byte")
    with nogil:
        buffer = hmr_read_source(c_path, no_follow, tries, &length, &sec, &nsec, &size,
                                 &unlinked)
    if buffer == NULL:
        PyErr_SetFromErrnoWithFilenameObject(OSError, path)
        return None  # not reached: the line above raised
    try:
        data = PyBytes_FromStringAndSize(buffer, length)
    finally:
        free(buffer)
    if into is not None:
        into.sec, into.nsec, into.size, into.unlinked = sec, nsec, size, unlinked
    return data


cdef object _capture_project_path = None
cdef object _capture_sink = None
cdef object _capture_listeners = None
cdef object _capture_failed = None
cdef object _loader_get_code = None
cdef object _loader_path_stats = None
cdef object _loader_get_data = None
cdef object _capture_local = threading.local()
# Tries at a read no write overlaps: capture.READ_TRIES, taken by capture_sources.
cdef int _READ_TRIES = 1


cdef _Reading _current_reading():
    stack = getattr(_capture_local, "stack", None)
    if stack:
        return <_Reading>(<list>stack)[-1]
    return None


def _captured_get_code(loader, fullname):
    """``SourceFileLoader.get_code`` keeping a project module's source (see the twin)."""
    cdef _Reading reading
    path = getattr(loader, "path", None)
    if not isinstance(path, str):
        return _loader_get_code(loader, fullname)
    path = str.__str__(path)  # a subclass: its value, as the twin's os calls take it
    real = _capture_project_path(path)
    if real is None:
        return _loader_get_code(loader, fullname)
    if not HMR_POSIX_READS:
        return _captured_get_code_os(loader, fullname, path, real)
    reading = _Reading.__new__(_Reading)
    reading.path = path
    try:
        reading.source = _read_file(path, True, _READ_TRIES, reading)
    except OSError:
        return _loader_get_code(loader, fullname)
    return _load_and_keep(loader, fullname, reading, real)


cdef _captured_get_code_os(loader, fullname, str path, real):
    """Windows: the twin's reads, with the os module."""
    from muckrack_hmr._core_py import _Reading as _OsReading

    try:
        found = _OsReading(path)
    except OSError:
        return _loader_get_code(loader, fullname)
    cdef _Reading reading = _Reading.__new__(_Reading)
    reading.path = path
    reading.source = found.source
    mtime_ns = found.stat.st_mtime_ns
    reading.sec, reading.nsec = divmod(mtime_ns, 1_000_000_000)
    reading.size = found.stat.st_size
    reading.unlinked = found.unlinked
    return _load_and_keep(loader, fullname, reading, real)


cdef _load_and_keep(loader, fullname, _Reading reading, real):
    stack = _capture_local.__dict__.setdefault("stack", [])
    stack.append(reading)
    try:
        code = _loader_get_code(loader, fullname)
    finally:
        stack.pop()
    try:
        figures = (reading.sec * 1_000_000_000 + reading.nsec, reading.size)
        _capture_sink(fullname, reading.source, figures, real if reading.unlinked else None)
    except Exception:
        _capture_failed("could not keep the source of %s", fullname)
    for listener in _capture_listeners:
        if code is None:
            break
        try:
            listener(code, reading.cached)
        except Exception:
            _capture_failed("a listener failed on the code of %s", fullname)
    return code


def _captured_path_stats(loader, path):
    """``SourceFileLoader.path_stats``: the figures of the bytes being loaded (see the twin)."""
    cdef _Reading reading = _current_reading()
    if reading is None or reading.path != path:
        return _loader_path_stats(loader, path)
    # As os.stat computes st_mtime: only its whole seconds reach the bytecode cache.
    return {"mtime": reading.sec + reading.nsec * 1e-9, "size": reading.size}


def _captured_get_data(loader, path):
    """``SourceFileLoader.get_data``: the source being loaded, or its bytecode cache read
    in plain system calls (see the twin)."""
    cdef _Reading reading = _current_reading()
    if reading is None:
        return _loader_get_data(loader, path)
    if reading.path == path:
        reading.cached = None  # the cache did not do: the loader compiles the source
        return reading.source
    if not HMR_POSIX_READS or type(path) is not str:
        from muckrack_hmr.capture import read_whole

        reading.cached = read_whole(path)
    else:
        reading.cached = _read_file(path, False, 1, None)
    return reading.cached


def capture_sources(project_path, sink, listeners, failed, *, get_code, path_stats, get_data):
    """``SourceFileLoader``'s ``get_code``, ``path_stats`` and ``get_data`` keeping the
    exact bytes each project module runs (see the twin).  One capture per process:
    the last call's arguments are the ones used."""
    global _capture_project_path, _capture_sink, _capture_listeners, _capture_failed
    global _loader_get_code, _loader_path_stats, _loader_get_data, _READ_TRIES
    from muckrack_hmr.capture import READ_TRIES

    _READ_TRIES = READ_TRIES
    _capture_project_path = project_path
    _capture_sink = sink
    _capture_listeners = listeners
    _capture_failed = failed
    _loader_get_code = get_code
    _loader_path_stats = path_stats
    _loader_get_data = get_data
    return _captured_get_code, _captured_path_stats, _captured_get_data


cdef object _package_of(object globals):
    cdef PyObject* found
    if type(globals) is dict:
        found = PyDict_GetItem(globals, "__package__")
        if found != NULL and type(<object>found) is str:
            return <object>found
    package = globals.get("__package__")
    if package is None:
        spec = globals.get("__spec__")
        if spec is not None:
            package = spec.parent
        else:
            name = globals.get("__name__")
            if not isinstance(name, str):
                return None
            package = name if "__path__" in globals else name.rpartition(".")[0]
    return package if isinstance(package, str) else None


cdef class ImportTracker
cdef ImportTracker _HOOKED = None


# The hooks installed are C functions around the Cython ones: an import that raises
# passes through them, and each Cython function it leaves adds a frame of this module
# to the traceback (``src/_hmr_core.pyx``, two per import level), which a traceback the
# program prints (``traceback.print_exc()``, a framework's error page, a gunicorn
# worker's boot error) showed between the import statement and the module it imports.
# On the way out, the wrapper takes them out (see _leave_out_own_frames): the
# traceback is python's.  Called only for an import that raises.
cdef extern from *:
    """
    static PyObject *hmr_leave_out = NULL;

    static PyObject *hmr_hook_call(PyObject *target, PyObject *const *args,
                                   Py_ssize_t nargs, PyObject *kwnames) {
        PyObject *result = PyObject_Vectorcall(target, args, nargs, kwnames);
        if (result == NULL && hmr_leave_out != NULL) {
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            PyErr_NormalizeException(&type, &value, &tb);
            if (value != NULL) {
                if (tb != NULL) {
                    PyException_SetTraceback(value, tb);
                }
                PyObject *done = PyObject_CallOneArg(hmr_leave_out, value);
                if (done == NULL) {
                    PyErr_Clear();
                } else {
                    Py_DECREF(done);
                }
                Py_XDECREF(tb);
                tb = PyException_GetTraceback(value);
            }
            PyErr_Restore(type, value, tb);
        }
        return result;
    }

    static PyMethodDef hmr_import_def = {
        "__import__", (PyCFunction)(void (*)(void))hmr_hook_call,
        METH_FASTCALL | METH_KEYWORDS,
        "Import a module, recording project imports (muckrack_hmr's hook)."};
    static PyMethodDef hmr_import_module_def = {
        "import_module", (PyCFunction)(void (*)(void))hmr_hook_call,
        METH_FASTCALL | METH_KEYWORDS,
        "importlib.import_module, recording project imports (muckrack_hmr's hook)."};

    static PyObject *hmr_wrap(PyObject *target, int for_module) {
        return PyCFunction_NewEx(for_module ? &hmr_import_module_def : &hmr_import_def,
                                 target, NULL);
    }

    static void hmr_set_leave_out(PyObject *function) {
        Py_XINCREF(function);
        Py_XSETREF(hmr_leave_out, function);
    }
    """
    object hmr_wrap(object target, int for_module)
    void hmr_set_leave_out(object function)


def _leave_out_own_frames(error):
    """Take this module's frames out of ``error``'s traceback (see hmr_hook_call)."""
    own = globals()
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_globals is own:
        tb = tb.tb_next
    error.__traceback__ = tb
    while tb is not None:
        following = tb.tb_next
        while following is not None and following.tb_frame.f_globals is own:
            following = following.tb_next
        tb.tb_next = following
        tb = following
    if isinstance(error, SyntaxError):
        _leave_out_the_loader(error)


# The import system's own frames (``importlib._bootstrap``, ``_bootstrap_external``).
_IMPORTLIB = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


def _leave_out_the_loader(error):
    """Take the import system's frames out of the end of the traceback of ``error``, a
    module's source that did not compile: the capture compiles it, where the loader's
    compile is called so that the interpreter leaves them out
    (``_call_with_frames_removed``).  The traceback a program prints is then python's:
    the import statement, then the error's line."""
    link = None  # the last entry that stays
    # (An ``importlib.import_module`` call: python shows the import system's frames there.)
    tb = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "_gcd_import" and code.co_filename in _IMPORTLIB:
            return
        if code.co_filename not in _IMPORTLIB:
            link = tb
        tb = tb.tb_next
    if link is None:
        error.__traceback__ = None
    else:
        link.tb_next = None


hmr_set_leave_out(_leave_out_own_frames)
# The hook as installed: one for the process (see ImportTracker.import_hook).
cdef object _IMPORT_HOOK = None


cdef bint _no_submodules(object name, object fromlist, object module):
    """Can a statement that returned ``module`` (no project's) have imported no other
    module (see the twin)?"""
    if not fromlist:
        return "." not in name
    namespace = getattr(module, "__dict__", None)
    return type(namespace) is dict and "__path__" not in <dict>namespace


def _tracked_import(name, globals=None, locals=None, fromlist=(), level=0):
    """Import a module, recording project imports (see ImportTracker.import_hook)."""
    if _HOOKED is None:
        return PyImport_ImportModuleLevelObject(name, globals, locals, fromlist, level)
    return _HOOKED._import(name, globals, locals, fromlist, level)


cdef class DependencyGraph:
    """Import edges between project modules, importer -> imported.

    Nodes are module names.  Every query answers in a deterministic order:
    the order in which modules and edges were first recorded.
    """

    cdef dict _ids
    cdef list _names
    cdef list _out
    cdef list _in
    cdef dict _bindings
    cdef Py_ssize_t _version
    # Imports seen but not recorded yet, and the tracker's ``apply_pending``
    # that records them before the graph is read (see the twin).
    cdef list _pending
    # Modules classified as project code and not yet nodes (see the twin).
    cdef list _waiting_modules
    cdef object _record_pending
    # imported -> {name: how many importers bound it} (see the twin).
    cdef dict _bound_counts
    # The queries run on C arrays: a compressed copy of the adjacency lists
    # (CSR: node i's edges are targets[start[i]:start[i + 1]]), made again
    # when ``version`` moved.  Edits are rare (imports); queries run on
    # every reload, over thousands of modules.
    cdef Py_ssize_t _csr_version
    cdef Py_ssize_t _csr_nodes
    cdef Py_ssize_t* _out_start
    cdef Py_ssize_t* _out_targets
    cdef Py_ssize_t* _in_start
    cdef Py_ssize_t* _in_targets

    def __init__(self):
        self._ids = {}
        self._names = []
        self._out = []
        self._in = []
        self._bindings = {}
        self._version = 0
        self._pending = []
        self._waiting_modules = []
        # Out of the garbage collector's passes: they hold strs, ints and None (a
        # fromlist that is not all names, rarely: never this list), no cycle goes
        # through them, and at 5,000 modules every full collection of the start-up
        # walked the 287,000 items waiting.  The twin cannot untrack a list.
        PyObject_GC_UnTrack(self._pending)
        PyObject_GC_UnTrack(self._waiting_modules)
        self._record_pending = None
        self._bound_counts = {}
        self._csr_version = -1

    def __dealloc__(self):
        self._free_csr()

    cdef void _free_csr(self):
        free(self._out_start)
        free(self._out_targets)
        free(self._in_start)
        free(self._in_targets)
        self._out_start = self._out_targets = self._in_start = self._in_targets = NULL
        self._csr_version = -1

    cdef int _pack(self, list lists, Py_ssize_t** start_out, Py_ssize_t** targets_out) except -1:
        cdef Py_ssize_t n = len(lists)
        cdef Py_ssize_t total = 0
        cdef Py_ssize_t node, position = 0
        cdef list edges
        for node in range(n):
            total += len(<list>lists[node])
        cdef Py_ssize_t* start = <Py_ssize_t*>malloc((n + 1) * sizeof(Py_ssize_t))
        cdef Py_ssize_t* targets = <Py_ssize_t*>malloc((total + 1) * sizeof(Py_ssize_t))
        if start == NULL or targets == NULL:
            free(start)
            free(targets)
            raise MemoryError()
        for node in range(n):
            start[node] = position
            edges = <list>lists[node]
            for item in edges:
                targets[position] = <Py_ssize_t>item
                position += 1
        start[n] = position
        start_out[0] = start
        targets_out[0] = targets
        return 0

    cdef int _csr(self) except -1:
        if self._csr_version == self._version and self._out_start != NULL:
            return 0
        self._free_csr()
        self._pack(self._out, &self._out_start, &self._out_targets)
        try:
            self._pack(self._in, &self._in_start, &self._in_targets)
        except MemoryError:
            self._free_csr()
            raise
        self._csr_nodes = len(self._names)
        self._csr_version = self._version
        return 0

    cdef inline int _settle(self) except -1:
        """Record the imports still pending, before the graph is read or edited."""
        if (self._pending or self._waiting_modules) and self._record_pending is not None:
            self._record_pending()
        return 0

    @property
    def pending(self):
        """How many import statements wait to be recorded (see ImportTracker.apply_pending)."""
        return len(self._pending) // _FIELDS

    @property
    def version(self):
        """Grows whenever a module or an edge is added or removed (not bindings):
        what was derived from the graph is stale when it changed."""
        self._settle()
        return self._version

    cdef Py_ssize_t _node(self, str name):
        return <Py_ssize_t>self._node_id(name)

    cdef object _node_id(self, str name):
        """The node of ``name`` (added if new), as the one int object its edges share."""
        cdef PyObject* found = PyDict_GetItem(self._ids, name)
        if found != NULL:
            return <object>found
        self._version += 1
        node = len(self._names)
        self._ids[name] = node
        self._names.append(name)
        # Adjacency lists of shared ints: several times smaller than dicts
        # (see the twin).
        self._out.append([])
        self._in.append([])
        return node

    def __len__(self):
        self._settle()
        return len(self._ids)

    def __contains__(self, name):
        self._settle()
        return name in self._ids

    def modules(self):
        """Every module in the graph, in the order it was first seen."""
        self._settle()
        return list(self._ids)

    def add_module(self, str name):
        """Add ``name`` as a node with no edges (no-op if present)."""
        self._node(name)

    def add_edge(self, str importer, str imported):
        """Record that ``importer`` imports ``imported``; True if the edge is new."""
        return self._add_edge(importer, imported)

    cdef bint _add_edge(self, str importer, str imported) except -1:
        if importer == imported:
            return False
        # The ints from ``_ids``, not new ones: one object per module, shared
        # by all its edges, keeps the graph small.
        cdef object source_id = self._node_id(importer)
        cdef object target_id = self._node_id(imported)
        cdef list out = <list>self._out[<Py_ssize_t>source_id]
        cdef list into = <list>self._in[<Py_ssize_t>target_id]
        # An edge is in both lists: look in the shorter (see the twin).
        if len(out) <= len(into):
            if _holds(out, target_id):
                return False
        elif _holds(into, source_id):
            return False
        out.append(target_id)
        into.append(source_id)
        self._version += 1
        return True

    def add_binding(self, str importer, str imported, str name):
        """Record that ``importer`` ran ``from imported import name``."""
        self._add_binding(importer, imported, name)

    cdef int _add_binding(self, str importer, str imported, str name) except -1:
        # Interned (see the twin): binders() compares by identity first.
        imported = _interned(imported)
        name = _interned(name)
        cdef list flat = self._bindings.get(importer)
        cdef Py_ssize_t index
        cdef dict counts
        if flat is None:
            self._bindings[importer] = [imported, name]
        else:
            for index in range(0, len(flat), 2):
                if flat[index + 1] == name and flat[index] == imported:
                    return 0
            flat.append(imported)
            flat.append(name)
        counts = self._bound_counts.get(imported)
        if counts is None:
            counts = self._bound_counts[imported] = {}
        counts[name] = counts.get(name, 0) + 1
        return 0

    cdef int _unbind(self, list flat) except -1:
        """The bindings ``flat`` (an importer's) are gone: count them out."""
        cdef Py_ssize_t index
        cdef dict counts
        cdef Py_ssize_t left
        for index in range(0, len(flat), 2):
            counts = self._bound_counts.get(flat[index])
            if counts is None:
                continue
            name = flat[index + 1]
            left = counts.get(name, 0) - 1
            if left > 0:
                counts[name] = left
            else:
                counts.pop(name, None)
                if not counts:
                    del self._bound_counts[flat[index]]
        return 0

    def bound_names(self, str importer, str imported):
        """Names that ``importer`` bound with ``from imported import ...``."""
        self._settle()
        cdef list flat = self._bindings.get(importer)
        cdef Py_ssize_t index
        if flat is None:
            return []
        return [flat[index + 1] for index in range(0, len(flat), 2) if flat[index] == imported]

    def binders(self, str imported, names, *, bint settle=True):
        """Direct importers of ``imported`` that bound one of ``names`` (or ``*``) from it.

        In dependents order: the importers whose ``from imported import ...``
        bindings a change of those names concerns.  ``settle=False``: from the
        imports recorded so far (see ImportTracker.apply_pending_of).
        """
        if settle:
            self._settle()
        found_node = self._ids.get(imported)
        if found_node is None:
            return []
        cdef dict counts = self._bound_counts.get(imported)
        if counts is None:
            return []
        cdef set wanted = set(names)
        wanted.add("*")
        if counts.keys().isdisjoint(wanted):
            return []
        cdef list found = []
        cdef list names_list = self._names
        cdef dict bindings = self._bindings
        cdef list flat
        cdef PyObject* entry
        cdef str interned = sys.intern(imported)
        cdef PyObject* key = <PyObject*>interned
        cdef Py_ssize_t index, length
        for source in <list>self._in[<Py_ssize_t>found_node]:
            importer = names_list[<Py_ssize_t>source]
            entry = PyDict_GetItem(bindings, importer)
            if entry == NULL:
                continue
            flat = <list>entry
            length = len(flat)
            for index in range(0, length, 2):
                # Interned by add_binding: the same module is the same object.
                if <PyObject*>flat[index] == key and flat[index + 1] in wanted:
                    found.append(importer)
                    break
        return found

    def clear_dependencies(self, str importer):
        """Drop the outgoing edges and bindings of ``importer``; return them."""
        self._settle()
        node = self._ids.get(importer)
        if node is None:
            return [], {}
        cdef list names = self._names
        cdef list out = <list>self._out[<Py_ssize_t>node]
        cdef Py_ssize_t index
        previous = [names[target] for target in out]
        if out:
            self._version += 1
        for target in out:
            (<list>self._in[<Py_ssize_t>target]).remove(node)
        del out[:]
        cdef dict bindings = {}
        cdef list flat = self._bindings.pop(importer, None)
        if flat is not None:
            self._unbind(flat)
            for index in range(0, len(flat), 2):
                bindings.setdefault(flat[index], []).append(flat[index + 1])
        return previous, bindings

    def restore_dependencies(self, str importer, tuple saved):
        """Put back exactly what :meth:`clear_dependencies` returned."""
        self._settle()
        self.clear_dependencies(importer)
        edges, bindings = saved
        self._node(importer)
        for imported in edges:
            self.add_edge(importer, imported)
        for imported, bound in bindings.items():
            for name in bound:
                self.add_binding(importer, imported, name)

    def remove_module(self, str name):
        """Forget ``name`` and every edge that touches it."""
        self._settle()
        node = self._ids.pop(name, None)
        if node is None:
            return
        self._version += 1
        cdef Py_ssize_t index = node
        for target in <list>self._out[index]:
            (<list>self._in[<Py_ssize_t>target]).remove(node)
        for source in <list>self._in[index]:
            (<list>self._out[<Py_ssize_t>source]).remove(node)
        self._out[index] = []
        self._in[index] = []
        cdef list flat = self._bindings.pop(name, None)
        if flat is not None:
            self._unbind(flat)
        self._bound_counts.pop(name, None)
        cdef list kept
        cdef Py_ssize_t position
        for importer in list(self._bindings):
            flat = <list>self._bindings[importer]
            if name in flat:
                kept = []
                for position in range(0, len(flat), 2):
                    if flat[position] != name:
                        kept.append(flat[position])
                        kept.append(flat[position + 1])
                if kept:
                    self._bindings[importer] = kept
                else:
                    del self._bindings[importer]

    def dependencies_of(self, str name, *, bint settle=True):
        """Modules that ``name`` imports directly (``settle``: see :meth:`binders`)."""
        if settle:
            self._settle()
        node = self._ids.get(name)
        if node is None:
            return []
        cdef list names = self._names
        return [names[target] for target in <list>self._out[<Py_ssize_t>node]]

    def dependents_of(self, str name, *, bint settle=True):
        """Modules that import ``name`` directly (``settle``: see :meth:`binders`)."""
        if settle:
            self._settle()
        node = self._ids.get(name)
        if node is None:
            return []
        cdef list names = self._names
        return [names[source] for source in <list>self._in[<Py_ssize_t>node]]

    cdef list _reach(self, object starts, bint incoming):
        self._csr()
        cdef Py_ssize_t n = self._csr_nodes
        cdef Py_ssize_t* start = self._in_start if incoming else self._out_start
        cdef Py_ssize_t* targets = self._in_targets if incoming else self._out_targets
        cdef char* seen = <char*>calloc(n + 1, 1)
        cdef Py_ssize_t* queue = <Py_ssize_t*>malloc((n + 1) * sizeof(Py_ssize_t))
        cdef Py_ssize_t start_count, index, node, edge, nxt, length = 0
        cdef list names = self._names
        cdef list result
        if seen == NULL or queue == NULL:
            free(seen)
            free(queue)
            raise MemoryError()
        try:
            for name in starts:
                found = self._ids.get(name)
                if found is None:
                    continue
                node = <Py_ssize_t>found
                if not seen[node]:
                    seen[node] = 1
                    queue[length] = node
                    length += 1
            start_count = length
            index = 0
            while index < length:
                node = queue[index]
                for edge in range(start[node], start[node + 1]):
                    nxt = targets[edge]
                    if not seen[nxt]:
                        seen[nxt] = 1
                        queue[length] = nxt
                        length += 1
                index += 1
            result = [names[queue[index]] for index in range(start_count, length)]
        finally:
            free(seen)
            free(queue)
        return result

    def transitive_dependencies(self, str name):
        """Everything ``name`` imports, directly or not (breadth-first)."""
        self._settle()
        return self._reach((name,), False)

    def transitive_dependents(self, names):
        """Everything that imports one of ``names``, directly or not.

        Breadth-first; the starting modules themselves are never included.
        """
        self._settle()
        return self._reach(names, True)

    def topological_order(self, names):
        """Order ``names`` so that dependencies come before their dependents.

        Only edges between members of ``names`` count.  Each import cycle is
        collapsed into one group; a module outside any cycle is a group of
        one.  Members of a group are in first-seen order.  Unknown names are
        placed first, each alone.
        """
        self._settle()
        cdef dict ids = self._ids
        cdef list groups = []
        self._csr()
        cdef Py_ssize_t n = self._csr_nodes
        # Per node: member flag, Tarjan index (-1: not visited), lowlink,
        # on-stack flag; the SCC stack; the DFS stack of (node, next edge).
        cdef char* member = <char*>calloc(n + 1, 1)
        cdef char* on_stack = <char*>calloc(n + 1, 1)
        cdef Py_ssize_t* index_of = <Py_ssize_t*>malloc((n + 1) * sizeof(Py_ssize_t))
        cdef Py_ssize_t* lowlink = <Py_ssize_t*>malloc((n + 1) * sizeof(Py_ssize_t))
        cdef Py_ssize_t* stack = <Py_ssize_t*>malloc((n + 1) * sizeof(Py_ssize_t))
        cdef Py_ssize_t* work_node = <Py_ssize_t*>malloc((n + 1) * sizeof(Py_ssize_t))
        cdef Py_ssize_t* work_edge = <Py_ssize_t*>malloc((n + 1) * sizeof(Py_ssize_t))
        cdef Py_ssize_t* start = self._out_start
        cdef Py_ssize_t* targets = self._out_targets
        cdef Py_ssize_t root, node, nxt, edge, member_node, parent
        cdef Py_ssize_t counter = 0, depth = 0, height = 0, first
        cdef list names_list = self._names
        cdef list component
        try:
            if (member == NULL or on_stack == NULL or index_of == NULL or lowlink == NULL
                    or stack == NULL or work_node == NULL or work_edge == NULL):
                raise MemoryError()
            for name in names:
                found = ids.get(name)
                if found is None:
                    groups.append([name])
                else:
                    member[<Py_ssize_t>found] = 1
            for node in range(n):
                index_of[node] = -1
            # Iterative Tarjan, roots in id order (the twin's sorted(members)):
            # an SCC is emitted once everything it imports has been.
            for root in range(n):
                if not member[root] or index_of[root] >= 0:
                    continue
                index_of[root] = lowlink[root] = counter
                counter += 1
                stack[height] = root
                height += 1
                on_stack[root] = 1
                work_node[0] = root
                work_edge[0] = start[root]
                depth = 1
                while depth:
                    node = work_node[depth - 1]
                    edge = work_edge[depth - 1]
                    if edge < start[node + 1]:
                        work_edge[depth - 1] = edge + 1
                        nxt = targets[edge]
                        if not member[nxt]:
                            continue
                        if index_of[nxt] < 0:
                            index_of[nxt] = lowlink[nxt] = counter
                            counter += 1
                            stack[height] = nxt
                            height += 1
                            on_stack[nxt] = 1
                            work_node[depth] = nxt
                            work_edge[depth] = start[nxt]
                            depth += 1
                        elif on_stack[nxt] and index_of[nxt] < lowlink[node]:
                            lowlink[node] = index_of[nxt]
                        continue
                    depth -= 1
                    if depth:
                        parent = work_node[depth - 1]
                        if lowlink[node] < lowlink[parent]:
                            lowlink[parent] = lowlink[node]
                    if lowlink[node] == index_of[node]:
                        if stack[height - 1] == node:  # the usual case: no cycle
                            height -= 1
                            on_stack[node] = 0
                            groups.append([names_list[node]])
                            continue
                        first = height - 1
                        while stack[first] != node:
                            first -= 1
                        component = []
                        for member_node in range(first, height):
                            on_stack[stack[member_node]] = 0
                            component.append(stack[member_node])
                        height = first
                        component.sort()
                        groups.append([names_list[<Py_ssize_t>item] for item in component])
        finally:
            free(member)
            free(on_stack)
            free(index_of)
            free(lowlink)
            free(stack)
            free(work_node)
            free(work_edge)
        return groups


cdef class ImportTracker:
    """Stands in for ``builtins.__import__`` and ``importlib.import_module``.

    Every import still goes through the original function first; the tracker
    only records what happened.  A repeated import statement costs one call
    to the original plus three dict lookups: no lock, no allocation.

    Compiled only: the first two lookups (the importer's ``__name__``, then
    its statement table) are usually skipped by a small direct-mapped cache
    keyed by the identity of the importer's globals dict.  The cache holds a
    strong reference to each globals dict it maps, so an address can never be
    reused by another dict while it is cached.
    """

    cdef public DependencyGraph graph
    cdef readonly object lock
    cdef object _classify
    cdef object _original_import
    cdef object _original_import_module
    cdef object _lock_acquire
    cdef object _lock_release
    cdef bint _original_is_builtin
    cdef dict _seen
    cdef dict _folders
    cdef dict _loaded
    cdef PyObject* _cached_globals[_CACHE_SIZE]
    cdef PyObject* _cached_seen[_CACHE_SIZE]

    def __dealloc__(self):
        self._clear_cache()

    cdef void _clear_cache(self):
        cdef Py_ssize_t slot
        for slot in range(_CACHE_SIZE):
            Py_XDECREF(self._cached_globals[slot])
            Py_XDECREF(self._cached_seen[slot])
            self._cached_globals[slot] = NULL
            self._cached_seen[slot] = NULL

    def __init__(self, DependencyGraph graph, classify, original_import, original_import_module):
        self.graph = graph
        self._classify = classify
        self._original_import = original_import
        self._original_import_module = original_import_module
        self._original_is_builtin = original_import is _BUILTIN_IMPORT
        self._seen = {}
        # The classifier's own tables, when it offers them (ProjectFilter.verdicts).
        verdicts = getattr(classify, "verdicts", None)
        tables = verdicts() if verdicts is not None else None
        if tables is not None:
            self._folders, self._loaded = tables
        self.lock = threading.RLock()
        # Bound once: ``with self.lock`` looks both methods up on every use.
        self._lock_acquire = self.lock.acquire
        self._lock_release = self.lock.release
        graph._record_pending = self.apply_pending

    # -- the hot path ---------------------------------------------------------

    def import_(self, name, globals=None, locals=None, fromlist=(), level=0):
        """The replacement for ``builtins.__import__``."""
        return self._import(name, globals, locals, fromlist, level)

    def import_hook(self):
        """The function to install as ``builtins.__import__``.

        It behaves as :meth:`import_`.  Here it is a module-level function
        that calls the C-level fast path of the most recent tracker to ask
        for it (only one can be installed at a time): a plain function call
        costs less than a bound method or a closure on every import statement.
        """
        global _HOOKED, _IMPORT_HOOK
        _HOOKED = self
        if _IMPORT_HOOK is None:
            _IMPORT_HOOK = hmr_wrap(_tracked_import, 0)
        return _IMPORT_HOOK

    def import_module_hook(self):
        """The function to install as ``importlib.import_module``: :meth:`import_module`
        (wrapped, see hmr_hook_call)."""
        return hmr_wrap(self.import_module, 1)

    cdef object _import(self, object name, object globals, object locals, object fromlist,
                        object level):
        cdef object module
        cdef PyObject* frame_globals
        cdef PyObject* found
        cdef dict seen
        if self._original_is_builtin:
            module = PyImport_ImportModuleLevelObject(name, globals, locals, fromlist, level)
        else:
            module = self._original_import(name, globals, locals, fromlist, level)
        if globals is None:
            # An explicit ``__import__("x")``: credit the calling module.
            frame_globals = PyEval_GetGlobals()
            if frame_globals == NULL:
                return module
            globals = <object>frame_globals
        seen = self._statements_of(globals)
        if seen is _UNTRACKED:
            return module
        if locals is globals:
            # A module's top level: runs once, not remembered (see the twin).
            self._defer(globals, name, fromlist, level, module, True)
            return module
        found = PyDict_GetItem(seen, name)
        if found != NULL:
            # The usual case first: one statement at level 0, recorded as its
            # fromlist (see the twin), and the same constant passed again.
            if <object>found is fromlist:
                if level == 0:
                    return module
            elif _several(<object>found):
                for at in range(1, len(<tuple>found), 2):
                    seen_fromlist = (<tuple>found)[at + 1]
                    if (<tuple>found)[at] == level and (
                        seen_fromlist is fromlist or seen_fromlist == fromlist
                    ):
                        return module
            elif level == 0 and <object>found == fromlist:
                return module
        self._defer(globals, name, fromlist, level, module)
        return module

    def import_module(self, name, package=None):
        """The replacement for ``importlib.import_module``."""
        module = self._original_import_module(name, package)
        cdef PyObject* frame_globals = PyEval_GetGlobals()
        if frame_globals == NULL:
            return module
        globals = <object>frame_globals
        cdef PyObject* found
        cdef dict seen = self._statements_of(globals)
        if seen is _UNTRACKED:
            # The importer is not ours (a framework loading the user's app,
            # say), but the imported module may be: classify it now.
            self._is_tracked(getattr(module, "__name__", name))
            return module
        found = PyDict_GetItem(seen, name)
        if found != NULL and _several(<object>found):
            for at in range(1, len(<tuple>found), 2):
                if (<tuple>found)[at] == -1 and (<tuple>found)[at + 1] == package:
                    return module
        self._defer(globals, name, package, -1, module)
        return module

    cdef inline dict _statements_of(self, object globals):
        """The import statements already recorded for the module of ``globals``.

        _UNTRACKED if that module is not project code.
        """
        cdef PyObject* importer
        cdef PyObject* found = NULL
        cdef dict seen
        cdef size_t slot = (<size_t><PyObject*>globals >> 4) & (_CACHE_SIZE - 1)
        if self._cached_globals[slot] == <PyObject*>globals:
            return <dict>self._cached_seen[slot]
        if type(globals) is dict:
            importer = PyDict_GetItem(globals, _NAME)
            if importer != NULL:
                found = PyDict_GetItem(self._seen, <object>importer)
        seen = self._classify_importer(globals) if found == NULL else <dict>found
        # Only a project module's namespace is held here (it lives in sys.modules): one a
        # module outside the project made (a template compiled to a module, a namespace
        # given to exec) would be kept alive, with the cycles it is in, by a reference
        # the collector cannot see (jinja2's weak-reference test failed after a first run).
        if type(globals) is dict and seen is not _UNTRACKED:
            Py_INCREF(globals)
            Py_INCREF(seen)
            Py_XDECREF(self._cached_globals[slot])
            Py_XDECREF(self._cached_seen[slot])
            self._cached_globals[slot] = <PyObject*>globals
            self._cached_seen[slot] = <PyObject*>seen
        return seen

    # -- the slow path: first time an importer runs a given statement --------

    cdef dict _classify_importer(self, object globals):
        try:
            importer = globals["__name__"]
        except (KeyError, TypeError):
            return _UNTRACKED
        if not isinstance(importer, str):
            return _UNTRACKED
        with self.lock:
            seen = self._seen.get(importer)
            if seen is None:
                seen = _NONE_YET if self._classify_module(importer, globals) else _UNTRACKED
                self._seen[importer] = seen
                if seen is not _UNTRACKED:
                    # A node once something reads the graph (see the twin).
                    self.graph._waiting_modules.append(importer)
            return seen

    cdef bint _classify_module(self, str importer, object globals) except -1:
        """What the classifier says of the module; compiled only: without calling it when it can.

        The one deliberate difference from the pure twin, which always calls
        the classifier (same answers, more cost): see ``_core_py``'s docstring.

        A module whose folder the classifier has judged already is classified
        here, as :meth:`ProjectFilter.__call__` would: a project folder's file
        is recorded in the baselines with its ``lstat``, unless its loader's
        read recorded it already.  A new folder, a
        symlink, a path the simple split cannot take, or a classifier without
        tables goes to the classifier.
        """
        cdef PyObject* found
        cdef Py_ssize_t slash
        cdef bytes encoded
        cdef const char* c_path
        cdef long long mtime_ns = 0
        cdef long long size = 0
        cdef int kind
        if self._folders is not None and type(globals) is dict:
            found = PyDict_GetItem(globals, _FILE)
            if found != NULL and type(<object>found) is str:
                filename = <str>found
                slash = filename.rfind("/")
                if slash > 0 and filename.endswith(_SOURCE_SUFFIXES):
                    found = PyDict_GetItem(self._folders, filename[:slash])
                    if found != NULL:
                        if <object>found is None:
                            return False
                        path = <str>found + filename[slash + 1 :]
                        found = PyDict_GetItem(self._loaded, path)
                        if found != NULL:
                            if (<tuple>found)[0] == importer:
                                return True  # recorded as its loader read it (note_read)
                            # Claimed by another module already (an alias?):
                            # the classifier decides whose file it is.
                            return bool(self._classify(importer, globals))
                        encoded = PyUnicode_EncodeFSDefault(path)
                        if b"\0" not in encoded:  # else os.lstat's error, below
                            c_path = encoded
                            with nogil:  # as os.lstat: a slow file system stalls no thread
                                kind = hmr_lstat(c_path, &mtime_ns, &size)
                            if kind == -1:
                                self._loaded[path] = (importer, None)
                                return True
                            if kind == 0:
                                self._loaded[path] = (importer, (mtime_ns, size))
                                return True
        return bool(self._classify(importer, globals))

    cdef bint _is_tracked(self, object name) except -1:
        seen = self._seen.get(name)
        if seen is None:
            module = sys.modules.get(name)
            if module is None:
                return False
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                return False
            seen = self._classify_importer(namespace)
        return seen is not _UNTRACKED

    cdef _defer(self, object globals, object name, object fromlist, object level,
                object module, bint top=False):
        """A statement's first run: remember it, leave the graph for later (see the twin)."""
        cdef str importer = globals["__name__"]
        if not top:
            self._lock_acquire()
            try:
                self._remember_statement(importer, name, level, fromlist)
            finally:
                self._lock_release()
        target = getattr(module, "__name__", None)
        if type(target) is str:
            self._is_tracked(target)
            if (self._seen.get(target) is _UNTRACKED and level == 0
                    and _no_submodules(name, fromlist, module)):
                return  # ``import logging``, ``from dataclasses import field``: no edge
        else:
            target = None
        package = _package_of(globals) if level > 0 else None
        # Flat, _FIELDS items a statement (see the twin); one extend: atomic.
        cdef list pending = self.graph._pending
        pending.extend((importer, package, name, _compact(fromlist), level, target))
        if len(pending) > _PENDING_LIMIT:
            self.apply_pending()

    def record_import(self, str importer, str name, fromlist=None):
        """Record that ``importer`` imported ``name`` (absolute) where the hook could not
        see it: an import that a lazy-imports filter (PEP 810) made eager, which
        CPython runs without ``builtins.__import__``."""
        if self._is_tracked(importer):
            self.graph._pending.extend((importer, None, name, fromlist, 0, None))

    def apply_pending(self, limit=None):
        """Record in the graph up to ``limit`` of the imports seen and not recorded yet
        (all with None), oldest first; how many."""
        cdef list queue = self.graph._pending
        cdef Py_ssize_t applied = 0, count, waiting
        cdef list pending
        with self.lock:
            self._make_waiting_nodes()
            while queue and (limit is None or applied < limit):
                # Taken from the front: another thread may be appending.
                waiting = len(queue) // _FIELDS
                count = waiting if limit is None else min(waiting, limit - applied)
                pending = queue[:count * _FIELDS]
                del queue[:count * _FIELDS]
                self._apply(pending)
                applied += count
        return applied

    def apply_pending_of(self, wanted, names):
        """Record the waiting imports of the modules ``wanted`` says yes to (asked once
        a module), and each ``from ... import`` of one of ``names`` or of ``*``; how many
        (see the twin)."""
        cdef list queue = self.graph._pending
        cdef list wanted_names = [name for name in names if type(name) is str] + ["*"]
        cdef set wanted_set = set(wanted_names)
        cdef dict answers = {}
        cdef list kept = []
        cdef list picked = []
        cdef Py_ssize_t total, at, start = 0, chosen = 0
        cdef PyObject* found
        cdef object importer, last = None, fromlist
        cdef bint answer = False, binds
        with self.lock:
            self._make_waiting_nodes()
            total = (len(queue) // _FIELDS) * _FIELDS
            # The queue itself, not a copy: other threads only append to it.
            at = 0
            while at < total:
                importer = queue[at]
                if importer is not last:  # an importer's statements often come in a row
                    found = PyDict_GetItem(answers, importer)
                    if found == NULL:
                        answer = bool(wanted(importer))
                        answers[importer] = answer
                    else:
                        answer = <object>found is True
                    last = importer
                if not answer:
                    fromlist = queue[at + 3]
                    if fromlist is None:
                        at += _FIELDS
                        continue
                    if type(fromlist) is str:
                        # A plain search first: most fromlists name none of them.
                        binds = False
                        for name in wanted_names:
                            if (<str>name) in <str>fromlist:
                                binds = not wanted_set.isdisjoint(
                                    (<str>fromlist).split(_COMMA)
                                )
                                break
                        if not binds:
                            at += _FIELDS
                            continue
                # The others go back to the front, in their order, as runs
                # between the chosen ones (usually few).
                kept.extend(queue[start:at])
                picked.extend(queue[at:at + _FIELDS])
                at += _FIELDS
                start = at
                chosen += 1
            if chosen:
                kept.extend(queue[start:total])
                queue[0:total] = kept
            self._apply(picked)
        return chosen

    def pending_importers_of(self, parts):
        """The importers of the waiting imports that may make one of a module whose
        name's last part is one of ``parts`` (see the twin); none recorded."""
        cdef list queue = self.graph._pending
        cdef list wanted = [part for part in parts if type(part) is str and part]
        cdef set found = set()
        cdef Py_ssize_t total = (len(queue) // _FIELDS) * _FIELDS, at = 0
        cdef object name, fromlist, level, other
        if not wanted:
            return found
        while at < total:
            name = queue[at + 2]
            fromlist = queue[at + 3]
            if fromlist is not None and type(fromlist) is not str:
                found.add(queue[at])  # not names: kept as it came
            elif _spells_one(name, wanted) or _spells_one(fromlist, wanted):
                found.add(queue[at])
            elif not name or type(name) is not str:
                # ``from . import x``: the module is the package (or one above it).
                other = queue[at + 1]
                if other is not None and _spells_one(other, wanted):
                    found.add(queue[at])
            else:
                level = queue[at + 4]
                if level == -1:  # ``importlib.import_module``: the module it gave
                    other = queue[at + 5]
                    if other is None or _spells_one(other, wanted):
                        found.add(queue[at])
            at += _FIELDS
        return found

    cdef _make_waiting_nodes(self):
        cdef list modules = self.graph._waiting_modules
        cdef Py_ssize_t count
        cdef list names
        if modules:
            # First the nodes, in the order the modules were classified.
            count = len(modules)
            names = modules[:count]
            del modules[:count]
            for importer in names:
                self.graph._node_id(importer)

    cdef _apply(self, list pending):
        cdef Py_ssize_t at = 0, total = len(pending)
        while at < total:
            importer = pending[at]
            target = pending[at + 5]
            if pending[at + 4] != -1:
                self._record_import(
                    importer, pending[at + 1], pending[at + 2], pending[at + 3],
                    pending[at + 4],
                )
            elif target is not None and target != importer and self._is_tracked(target):
                self.graph._add_edge(importer, target)  # importlib.import_module
            at += _FIELDS

    cdef _record_import(self, str importer, object package, object name, object fromlist,
                        object level):
        cdef str base
        cdef str item_name
        cdef str target
        cdef Py_ssize_t start, dot
        cdef DependencyGraph graph = self.graph
        if type(fromlist) is str:  # see _compact
            fromlist = (<str>fromlist).split(_COMMA)
        if level > 0:
            try:
                base = _resolve_relative(name, package, level)
            except ImportError:
                return
        else:
            base = name
        cdef dict modules = <dict>PyImport_GetModuleDict()
        cdef object namespace = None
        cdef object own, tracked
        if not fromlist:
            # ``import a.b.c`` imports (and depends on) a, a.b and a.b.c.
            start = 0
            while True:
                dot = PyUnicode_FindChar(base, 46, start, len(base), 1)  # "."
                target = base if dot < 0 else base[:dot]
                if target != importer:
                    tracked = self._tracked_name(target, modules)
                    if tracked is not None and tracked != importer:
                        graph._add_edge(importer, tracked)
                if dot < 0:
                    return
                start = dot + 1
        # ``from base import a, b``: the statement got ``base`` from
        # sys.modules; its namespace, not getattr (see the twin).  Edges and
        # bindings are recorded as they are met, in the twin's order.
        own = self._tracked_name(base, modules)
        if own is not None and own != importer:
            graph._add_edge(importer, own)
        module = modules.get(base)
        if PyModule_Check(module):
            namespace = <object>PyModule_GetDict(module)
        for item in fromlist:
            if type(item) is str:
                item_name = item
            elif isinstance(item, str):
                item_name = str(item)  # a str subclass: typed locals take exact str
            else:
                continue
            if item_name != "*" and namespace is not None:
                value = (<dict>namespace).get(item_name)
                # A submodule is imported, not bound: the name holds the
                # module that sys.modules has (none holds None).
                if value is not None:
                    target = f"{base}.{item_name}"
                    if modules.get(target) is value:
                        if target != importer:
                            tracked = self._tracked_name(target, modules)
                            if tracked is not None and tracked != importer:
                                graph._add_edge(importer, tracked)
                        continue
            if own is not None:
                graph._add_binding(importer, own, item_name)

    cdef object _tracked_name(self, str name, dict modules):
        """The name the graph knows the module imported as ``name`` by, if tracked (see
        the twin): its own where sys.modules holds it under a second name too."""
        if not self._is_tracked(name):
            return None
        module = modules.get(name)
        if PyModule_Check(module):
            own = (<dict>PyModule_GetDict(module)).get("__name__")
            if own != name and isinstance(own, str) and modules.get(own) is module:
                return own
        return name

    cdef _remember_statement(self, str importer, object name, object level, object fromlist):
        cdef PyObject* found = PyDict_GetItem(self._seen, importer)
        if found == NULL or <dict>found is _UNTRACKED:
            return
        cdef dict seen = <dict>found
        if seen is _NONE_YET:
            seen = {}
            self._seen[importer] = seen
            # The fast path's cache may hold the shared record for this module's
            # namespace: once a module (those with imports in functions) at most.
            self._clear_cache()
        cdef object statements = seen.get(name, _MISSING)
        if statements is _MISSING:
            if level == 0 and (fromlist is None or type(fromlist) is tuple):
                seen[name] = fromlist
            else:
                seen[name] = (_MANY, level, fromlist)
        elif _several(statements):
            seen[name] = <tuple>statements + (level, fromlist)
        else:
            seen[name] = (_MANY, 0, statements, level, fromlist)


    # -- bookkeeping for the reloader -----------------------------------------

    def is_tracked(self, name):
        """Is the module ``name`` (as found in ``sys.modules``) project code?"""
        return self._is_tracked(name)

    def statements(self, importer):
        """What is recorded of the import statements ``importer`` ran (name -> record)."""
        with self.lock:
            seen = self._seen.get(importer)
            return {} if seen is None or seen is _UNTRACKED else dict(seen)

    def forget_statements(self, importer):
        """Forget which import statements ``importer`` ran, before it re-executes."""
        with self.lock:
            seen = self._seen.get(importer)
            if seen is not None and seen is not _UNTRACKED and seen is not _NONE_YET:
                seen.clear()
            # The fast path's cache holds the namespaces it saw: the one of a
            # module about to be imported afresh (a test module under
            # ``pytest --hmr``) must not stay alive through it.
            self._uncache(importer)

    def forget_verdict(self, importer):
        """Ask the classifier again at ``importer``'s next import if it was judged no
        project code (it counts as a project importer now: see the twin)."""
        with self.lock:
            if self._seen.get(importer) is _UNTRACKED:
                del self._seen[importer]
            self._uncache(importer)

    cdef int _uncache(self, object importer) except -1:
        """Drop the fast path's cached namespaces whose ``__name__`` is ``importer``."""
        cdef Py_ssize_t slot
        cdef PyObject* cached
        cdef PyObject* name
        for slot in range(_CACHE_SIZE):
            cached = self._cached_globals[slot]
            if cached == NULL:
                continue
            name = PyDict_GetItem(<object>cached, _NAME)
            if name != NULL and <object>name == importer:
                Py_XDECREF(self._cached_globals[slot])
                Py_XDECREF(self._cached_seen[slot])
                self._cached_globals[slot] = NULL
                self._cached_seen[slot] = NULL
        return 0

    def let_go(self):
        """Drop the namespaces the fast path holds (see the twin): at the program's exit."""
        self._clear_cache()

    def trim_statements(self):
        """Forget the statements recorded for modules whose import finished; how many names.

        See the twin: the record of top-level imports is dead weight once a
        module is imported; imports inside functions are recorded again.
        """
        cdef Py_ssize_t trimmed = 0
        modules = sys.modules
        with self.lock:
            for importer, seen in self._seen.items():
                if not seen or seen is _UNTRACKED:
                    continue
                module = modules.get(importer)
                spec = getattr(module, "__spec__", None)
                if module is None or getattr(spec, "_initializing", False):
                    continue  # still running its top level
                trimmed += len(<dict>seen)
                (<dict>seen).clear()
        return trimmed

    def tracked_modules(self):
        """Project modules currently in ``sys.modules``, in import order."""
        result = []
        for name in list(sys.modules):
            if self._is_tracked(name):
                result.append(name)
        return result
