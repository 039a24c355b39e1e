/*
 * Tabby's netlink socket addon (Linux only). Everything protocol-shaped (framing, rtnetlink
 * messages, sequence numbers, errors) lives in TypeScript; this file only does what Node
 * cannot: AF_NETLINK sockets, setns(2) around a socket() or a /proc/sys access, and
 * readiness from libuv without blocking the event loop.
 *
 *   open(nsPath | null, groups, rcvbuf, sndbuf) -> fd
 *       NETLINK_ROUTE socket, SOCK_NONBLOCK | SOCK_CLOEXEC, bound to `groups` (RTMGRP_* bits),
 *       with NETLINK_EXT_ACK, NETLINK_CAP_ACK and NETLINK_GET_STRICT_CHK set. With nsPath
 *       (/proc/<pid>/ns/net, /var/run/netns/<name>) the socket is created inside that network
 *       namespace: setns there, socket(), setns back, all in this one call, so the thread
 *       never returns to JavaScript in another namespace. A socket keeps its namespace for life.
 *   send(fd, buffer, length) -> bytes sent, or -1 when the socket would block
 *       One datagram to the kernel (nl_pid 0): the kernel processes every message in it
 *       before sendto returns, which is what makes batching cheap.
 *   recv(fd, buffer, status: Int32Array(1)) -> bytes
 *       Whole datagrams read back to back into `buffer` while at least MIN_ROOM bytes are
 *       free (no rtnetlink datagram is larger: dumps are built in at most 32 KiB), 0 when
 *       nothing is queued. A socket error (ENOBUFS: the kernel dropped messages because the
 *       receive buffer overran) is reported once by the kernel and then cleared, so it goes
 *       to status[0] beside the bytes already read instead of throwing them away; status[0]
 *       is 0 otherwise. A datagram larger than the room left gives EMSGSIZE the same way.
 *   watch(fd, callback) -> handle; unwatch(handle)
 *       A uv_poll on the fd: callback() runs on the event loop whenever it is readable.
 *       unwatch stops and frees it; it must be called before close(fd).
 *   close(fd)
 *   sysctl(nsPath | null, path, value | null) -> string
 *       Reads (value null) or writes a file under /proc/sys (or a bind of /proc/sys/net, for a
 *       container whose /proc/sys is read-only), opened inside nsPath's network namespace
 *       (net.* sysctls are per namespace, resolved when the file is opened).
 *
 * Failures throw an Error with .errno (positive), .code (e.g. "ENOENT") and .syscall.
 * Plain Node-API (C, NAPI_VERSION 8) plus libuv's uv_poll, as Node exports both.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define MIN_ROOM 65536
#define PATH_MAX_LEN 4096

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char msg[200];
  napi_value text, error, v;
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(err));
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text) != napi_ok ||
      napi_create_error(env, NULL, text, &error) != napi_ok) {
    napi_throw_error(env, NULL, msg);
    return NULL;
  }
  if (napi_create_int32(env, err, &v) == napi_ok) napi_set_named_property(env, error, "errno", v);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, error, "syscall", v);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_type_error(env, NULL, what);
  return NULL;
}

/* Optional string argument: null/undefined -> *out = 0 (no string), else copied into buf. */
static int get_opt_string(napi_env env, napi_value v, char *buf, size_t cap, int *present) {
  napi_valuetype t;
  size_t len = 0;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_null || t == napi_undefined) {
    *present = 0;
    return 0;
  }
  if (t != napi_string) return -1;
  if (napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok || len + 1 >= cap) return -1;
  *present = 1;
  return 0;
}

/* Enter the namespace at path; *orig receives an fd of the thread's own namespace. */
static int enter_netns(const char *path, int *orig, const char **failed) {
  *orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (*orig < 0) {
    *failed = "open /proc/thread-self/ns/net";
    return -1;
  }
  int target = open(path, O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int e = errno;
    close(*orig);
    errno = e;
    *failed = "open netns";
    return -1;
  }
  if (setns(target, CLONE_NEWNET) != 0) {
    int e = errno;
    close(target);
    close(*orig);
    errno = e;
    *failed = "setns";
    return -1;
  }
  close(target);
  return 0;
}

/* Back to the original namespace. Failing here would leave Node's main thread in another
 * namespace for the rest of its life, silently: abort instead. */
static void leave_netns(int orig) {
  if (setns(orig, CLONE_NEWNET) != 0) {
    fprintf(stderr, "tabby netlink addon: setns back to the original network namespace failed: %s\n",
            strerror(errno));
    abort();
  }
  close(orig);
}

static int set_buf(int fd, int force_opt, int opt, int size) {
  if (size <= 0) return 0;
  /* The FORCE variants (CAP_NET_ADMIN) pass net.core.[rw]mem_max; fall back to the capped one. */
  if (setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof size) == 0) return 0;
  return setsockopt(fd, SOL_SOCKET, opt, &size, sizeof size);
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  char path[PATH_MAX_LEN];
  int has_path = 0;
  uint32_t groups;
  int32_t rcvbuf, sndbuf;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4)
    return throw_type(env, "open(nsPath, groups, rcvbuf, sndbuf)");
  if (get_opt_string(env, argv[0], path, sizeof path, &has_path) != 0)
    return throw_type(env, "nsPath must be a string or null");
  if (napi_get_value_uint32(env, argv[1], &groups) != napi_ok) return throw_type(env, "groups");
  if (napi_get_value_int32(env, argv[2], &rcvbuf) != napi_ok) return throw_type(env, "rcvbuf");
  if (napi_get_value_int32(env, argv[3], &sndbuf) != napi_ok) return throw_type(env, "sndbuf");

  int orig = -1;
  const char *failed = NULL;
  if (has_path && enter_netns(path, &orig, &failed) != 0) return throw_errno(env, failed, errno);
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  int err = fd < 0 ? errno : 0;
  if (has_path) leave_netns(orig);
  if (fd < 0) return throw_errno(env, "socket", err);

  int one = 1;
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = groups;
  const char *step = NULL;
  if (set_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcvbuf) != 0)
    step = "setsockopt SO_RCVBUF";
  else if (set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, sndbuf) != 0)
    step = "setsockopt SO_SNDBUF";
  else if (setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one) != 0)
    step = "setsockopt NETLINK_EXT_ACK";
  else if (setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one) != 0)
    step = "setsockopt NETLINK_CAP_ACK";
  else if (setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof one) != 0)
    step = "setsockopt NETLINK_GET_STRICT_CHK";
  else if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
    step = "bind";
  if (step != NULL) {
    err = errno;
    close(fd);
    return throw_errno(env, step, err);
  }
  if (napi_create_int32(env, fd, &result) != napi_ok) return throw_type(env, "result");
  return result;
}

static int get_buffer(napi_env env, napi_value v, void **data, size_t *len) {
  bool is_buffer = false;
  if (napi_is_buffer(env, v, &is_buffer) != napi_ok || !is_buffer) return -1;
  return napi_get_buffer_info(env, v, data, len) == napi_ok ? 0 : -1;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  int32_t fd;
  uint32_t length;
  void *data;
  size_t cap;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3)
    return throw_type(env, "send(fd, buffer, length)");
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return throw_type(env, "fd");
  if (get_buffer(env, argv[1], &data, &cap) != 0) return throw_type(env, "buffer must be a Buffer");
  if (napi_get_value_uint32(env, argv[2], &length) != napi_ok || length > cap)
    return throw_type(env, "length");
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  ssize_t n;
  do n = sendto(fd, data, length, 0, (struct sockaddr *)&kernel, sizeof kernel);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return throw_errno(env, "sendto", errno);
  if (napi_create_int32(env, n < 0 ? -1 : (int32_t)n, &result) != napi_ok) return throw_type(env, "result");
  return result;
}

static napi_value js_recv(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  int32_t fd;
  void *data, *st;
  size_t cap, used = 0, st_len, st_off;
  napi_typedarray_type st_type;
  napi_value st_ab;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3)
    return throw_type(env, "recv(fd, buffer, status)");
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return throw_type(env, "fd");
  if (get_buffer(env, argv[1], &data, &cap) != 0) return throw_type(env, "buffer must be a Buffer");
  if (cap < MIN_ROOM) return throw_type(env, "buffer must hold at least 64 KiB");
  if (napi_get_typedarray_info(env, argv[2], &st_type, &st_len, &st, &st_ab, &st_off) != napi_ok ||
      st_type != napi_int32_array || st_len < 1)
    return throw_type(env, "status must be an Int32Array");
  int32_t *status = st;
  status[0] = 0;
  while (cap - used >= MIN_ROOM) {
    struct sockaddr_nl from;
    struct iovec iov = {.iov_base = (char *)data + used, .iov_len = cap - used};
    struct msghdr msg = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n;
    do n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) status[0] = errno;
      break;
    }
    if ((size_t)n > cap - used || (msg.msg_flags & MSG_TRUNC)) {
      status[0] = EMSGSIZE;
      break;
    }
    /* Only the kernel (nl_pid 0) may speak to us; drop anything else unread. */
    if (from.nl_pid != 0) continue;
    used += (size_t)n;
  }
  if (napi_create_uint32(env, (uint32_t)used, &result) != napi_ok) return throw_type(env, "result");
  return result;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1)
    return throw_type(env, "close(fd)");
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return throw_type(env, "fd");
  if (close(fd) != 0 && errno != EINTR) return throw_errno(env, "close", errno);
  return NULL;
}

/* ---- readiness: a uv_poll per watched fd ---- */

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  int active;
} watch_t;

static void on_closed(uv_handle_t *handle) { free(handle->data); }

static void on_poll(uv_poll_t *handle, int status, int events) {
  watch_t *w = handle->data;
  (void)events;
  (void)status; /* errors surface from recv(), which the callback calls */
  if (!w->active) return;
  napi_handle_scope scope;
  napi_value cb, global, ignored;
  if (napi_open_handle_scope(w->env, &scope) != napi_ok) return;
  if (napi_get_reference_value(w->env, w->callback, &cb) == napi_ok && cb != NULL &&
      napi_get_global(w->env, &global) == napi_ok) {
    napi_async_context ctx = NULL;
    napi_value name;
    /* make_callback runs microtasks and reports a thrown exception as uncaught, like any
     * other event-loop callback. */
    if (napi_create_string_utf8(w->env, "tabby.netlink", NAPI_AUTO_LENGTH, &name) == napi_ok &&
        napi_async_init(w->env, NULL, name, &ctx) == napi_ok) {
      napi_make_callback(w->env, ctx, global, cb, 0, NULL, &ignored);
      napi_async_destroy(w->env, ctx);
    }
  }
  napi_close_handle_scope(w->env, scope);
}

static void stop_watch(watch_t *w) {
  if (!w->active) return;
  w->active = 0;
  uv_poll_stop(&w->poll);
  napi_delete_reference(w->env, w->callback);
  uv_close((uv_handle_t *)&w->poll, on_closed);
}

static napi_value js_watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  int32_t fd;
  napi_valuetype t;
  uv_loop_t *loop;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2)
    return throw_type(env, "watch(fd, callback)");
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return throw_type(env, "fd");
  if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function) return throw_type(env, "callback");
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return throw_type(env, "no event loop");
  watch_t *w = calloc(1, sizeof *w);
  if (w == NULL) return throw_errno(env, "calloc", ENOMEM);
  w->env = env;
  w->poll.data = w;
  int r = uv_poll_init(loop, &w->poll, fd);
  if (r != 0) {
    free(w);
    return throw_errno(env, "uv_poll_init", -r);
  }
  if (napi_create_reference(env, argv[1], 1, &w->callback) != napi_ok) {
    uv_close((uv_handle_t *)&w->poll, on_closed);
    return throw_type(env, "callback reference");
  }
  w->active = 1;
  r = uv_poll_start(&w->poll, UV_READABLE, on_poll);
  if (r != 0) {
    stop_watch(w);
    return throw_errno(env, "uv_poll_start", -r);
  }
  /* The handle is an external the JS side passes back to unwatch; it is not freed by GC
   * (a forgotten watch keeps the loop alive, which is the visible failure we want). */
  if (napi_create_external(env, w, NULL, NULL, &result) != napi_ok) {
    stop_watch(w);
    return throw_type(env, "handle");
  }
  return result;
}

static napi_value js_unwatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *p = NULL;
  napi_valuetype t;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, argv[0], &p) != napi_ok || p == NULL)
    return throw_type(env, "unwatch(handle)");
  stop_watch(p);
  return NULL;
}

/* Keep or drop the watch's hold on the event loop (a monitor may not want to keep Node up). */
static napi_value js_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  void *p = NULL;
  bool on;
  napi_valuetype t;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, argv[0], &p) != napi_ok || p == NULL ||
      napi_get_value_bool(env, argv[1], &on) != napi_ok)
    return throw_type(env, "ref(handle, boolean)");
  watch_t *w = p;
  if (w->active) {
    if (on)
      uv_ref((uv_handle_t *)&w->poll);
    else
      uv_unref((uv_handle_t *)&w->poll);
  }
  return NULL;
}

/* ---- sysctls in another namespace ---- */

static napi_value js_sysctl(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  char ns[PATH_MAX_LEN], path[PATH_MAX_LEN], value[4096];
  int has_ns = 0, has_path = 0, has_value = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3)
    return throw_type(env, "sysctl(nsPath, path, value)");
  if (get_opt_string(env, argv[0], ns, sizeof ns, &has_ns) != 0) return throw_type(env, "nsPath");
  if (get_opt_string(env, argv[1], path, sizeof path, &has_path) != 0 || !has_path ||
      path[0] != '/' || strstr(path, "/../") != NULL)
    return throw_type(env, "path must be absolute, without ..");
  if (get_opt_string(env, argv[2], value, sizeof value, &has_value) != 0) return throw_type(env, "value");

  int orig = -1;
  const char *failed = NULL;
  if (has_ns && enter_netns(ns, &orig, &failed) != 0) return throw_errno(env, failed, errno);
  int fd = open(path, (has_value ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
  int err = fd < 0 ? errno : 0;
  if (has_ns) leave_netns(orig);
  if (fd < 0) return throw_errno(env, "open sysctl", err);

  /* Reading or writing an already-open sysctl file uses the namespace it was opened in. */
  ssize_t n;
  char out[4096];
  size_t got = 0;
  if (has_value) {
    size_t len = strlen(value);
    do n = write(fd, value, len);
    while (n < 0 && errno == EINTR);
    err = n < 0 ? errno : ((size_t)n != len ? EIO : 0);
  } else {
    for (;;) {
      do n = read(fd, out + got, sizeof out - 1 - got);
      while (n < 0 && errno == EINTR);
      if (n <= 0) break;
      got += (size_t)n;
      if (got == sizeof out - 1) break;
    }
    err = n < 0 ? errno : 0;
  }
  close(fd);
  if (err != 0) return throw_errno(env, has_value ? "write sysctl" : "read sysctl", err);
  out[got] = 0;
  if (napi_create_string_utf8(env, has_value ? value : out, NAPI_AUTO_LENGTH, &result) != napi_ok)
    return throw_type(env, "result");
  return result;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {{"open", js_open},       {"send", js_send},   {"recv", js_recv},     {"close", js_close},
             {"watch", js_watch},     {"unwatch", js_unwatch}, {"ref", js_ref}, {"sysctl", js_sysctl}};
  napi_value v;
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &v) != napi_ok ||
        napi_set_named_property(env, exports, fns[i].name, v) != napi_ok)
      return NULL;
  }
  return exports;
}
