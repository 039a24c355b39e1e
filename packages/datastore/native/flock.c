/*
 * flock(2) for the YAML-directory datastore backend (Linux only). Node has no file locks;
 * flock is the one that suits many short-lived processes sharing a directory: the kernel
 * drops it when the holder exits or is killed, so there is no stale-lock guesswork.
 *
 *   flock(fd, operation) -> boolean
 *
 * `operation` is LOCK_SH, LOCK_EX or LOCK_UN, optionally | LOCK_NB (all exported as
 * constants). Returns true when the lock was taken (or released), false only for LOCK_NB
 * when another open file description holds a conflicting lock (EWOULDBLOCK). Never called
 * without LOCK_NB by the TypeScript side, so nothing here blocks the event loop: it retries
 * with a short backoff instead. Other failures throw an Error with .errno (positive) and
 * .syscall. Plain Node-API (C, NAPI_VERSION 8), so one build loads in every Node from 20 on.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char msg[160];
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

static napi_value js_flock(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd, op;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2)
    return throw_type(env, "flock(fd, operation) takes two numbers");
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return throw_type(env, "fd");
  if (napi_get_value_int32(env, argv[1], &op) != napi_ok) return throw_type(env, "operation");
  int r;
  do r = flock(fd, op);
  while (r != 0 && errno == EINTR);
  if (r != 0 && errno != EWOULDBLOCK) return throw_errno(env, "flock", errno);
  if (napi_get_boolean(env, r == 0, &result) != napi_ok) return throw_type(env, "result");
  return result;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  static const struct {
    const char *name;
    int value;
  } constants[] = {
      {"LOCK_SH", LOCK_SH}, {"LOCK_EX", LOCK_EX}, {"LOCK_UN", LOCK_UN}, {"LOCK_NB", LOCK_NB}};
  napi_value v;
  if (napi_create_function(env, "flock", NAPI_AUTO_LENGTH, js_flock, NULL, &v) != napi_ok ||
      napi_set_named_property(env, exports, "flock", v) != napi_ok)
    return NULL;
  for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++) {
    if (napi_create_int32(env, constants[i].value, &v) != napi_ok ||
        napi_set_named_property(env, exports, constants[i].name, v) != napi_ok)
      return NULL;
  }
  return exports;
}
