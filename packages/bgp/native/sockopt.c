/*
 * bgp-ts socket options that Node's net module cannot set (Linux only):
 *
 *   TCP_MD5SIG / TCP_MD5SIG_EXT   RFC 2385 TCP MD5 signatures, per peer address
 *   IP_TTL, IPV6_UNICAST_HOPS     RFC 5082 GTSM: send with TTL / hop limit 255
 *   IP_MINTTL, IPV6_MINHOPCOUNT   RFC 5082 GTSM: drop what arrives with less
 *   SO_BINDTODEVICE               pin a session to an interface
 *
 * Plain Node-API (C, NAPI_VERSION 8), so one build loads in every Node from 20 on.
 * Nothing here blocks: prepare() makes an unconnected non-blocking socket with the options
 * already set, and the TypeScript wrapper connects it through Node's own event loop.
 * Every failing syscall throws an Error with .errno (positive), .syscall and .option; the
 * wrapper turns it into a SockoptError.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IP_MINTTL
#define IP_MINTTL 21 /* linux/in.h, Linux 2.6.34 */
#endif
#ifndef IPV6_MINHOPCOUNT
#define IPV6_MINHOPCOUNT 73 /* linux/in6.h, Linux 2.6.35 */
#endif

/* ---- errors ---------------------------------------------------------------------- */

/* What failed: the syscall, the option (or the step), and errno. */
typedef struct {
  const char *syscall;
  const char *option;
  int err;
} failure;

static int fail(failure *f, const char *syscall, const char *option, int err) {
  f->syscall = syscall;
  f->option = option;
  f->err = err;
  return -1;
}

static void set_prop(napi_env env, napi_value obj, const char *name, napi_value v) {
  if (v != NULL) napi_set_named_property(env, obj, name, v);
}

/* Throws Error("<option>: <strerror>") with errno, syscall and option properties. */
static napi_value throw_failure(napi_env env, const failure *f) {
  char msg[256];
  napi_value text, error, v;
  snprintf(msg, sizeof msg, "%s: %s", f->option, strerror(f->err));
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text) != napi_ok ||
      napi_create_error(env, NULL, text, &error) != napi_ok) {
    napi_throw_error(env, NULL, msg);
    return NULL;
  }
  if (napi_create_int32(env, f->err, &v) == napi_ok) set_prop(env, error, "errno", v);
  if (napi_create_string_utf8(env, f->syscall, NAPI_AUTO_LENGTH, &v) == napi_ok)
    set_prop(env, error, "syscall", v);
  if (napi_create_string_utf8(env, f->option, NAPI_AUTO_LENGTH, &v) == napi_ok)
    set_prop(env, error, "option", v);
  napi_throw(env, error);
  return NULL;
}

/* A Node-API call failed (wrong argument type, mostly): throw unless something is pending. */
static napi_value throw_napi(napi_env env, const char *what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_type_error(env, NULL, what);
  return NULL;
}

#define CHECK(call, what)                                                                      \
  do {                                                                                         \
    if ((call) != napi_ok) return throw_napi(env, what);                                       \
  } while (0)

/* ---- arguments --------------------------------------------------------------------- */

static bool is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  return t == napi_null || t == napi_undefined;
}

/* A string argument into buf (NUL-terminated); fails when it does not fit. */
static bool get_string(napi_env env, napi_value v, char *buf, size_t size) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || len + 1 > size) return false;
  return napi_get_value_string_utf8(env, v, buf, size, &len) == napi_ok;
}

static bool get_key(napi_env env, napi_value v, const uint8_t **data, size_t *len) {
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  void *p = NULL;
  if (napi_get_typedarray_info(env, v, &type, len, &p, &ab, &offset) != napi_ok) return false;
  if (type != napi_uint8_array) return false;
  *data = p;
  return true;
}

/* ---- addresses -------------------------------------------------------------------- */

/* Parses "192.0.2.1", "2001:db8::1" or "fe80::1%eth0" with a port into *ss. */
static int parse_addr(const char *text, uint16_t port, struct sockaddr_storage *ss, socklen_t *len) {
  char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  char *zone;
  memset(ss, 0, sizeof *ss);
  if (strlen(text) >= sizeof host) return EINVAL;
  strcpy(host, text);
  zone = strchr(host, '%');
  if (zone != NULL) *zone++ = '\0';
  struct sockaddr_in *sin = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
  if (zone == NULL && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    *len = sizeof *sin;
    return 0;
  }
  if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) return EINVAL;
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  if (zone != NULL) {
    char *end;
    unsigned long n = strtoul(zone, &end, 10);
    sin6->sin6_scope_id = (*zone != '\0' && *end == '\0') ? (uint32_t)n : if_nametoindex(zone);
    if (sin6->sin6_scope_id == 0) return ENODEV;
  }
  *len = sizeof *sin6;
  return 0;
}

/*
 * Puts an address in the socket's own family. TCP_MD5SIG's tcpm_addr must be (Linux's
 * tcp_v4_parse_md5_keys and tcp_v6_parse_md5_keys reject any other), and so must bind():
 * on an AF_INET6 socket an IPv4 peer is written ::ffff:a.b.c.d, which Linux files as an
 * IPv4 key (the dual-stack listener case); on an AF_INET socket a mapped address is unwrapped.
 */
static int to_family(struct sockaddr_storage *ss, socklen_t *len, int family) {
  if (ss->ss_family == family) return 0;
  if (family == AF_INET6) {
    struct sockaddr_in v4 = *(struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof *ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = v4.sin_port;
    sin6->sin6_addr.s6_addr[10] = 0xff;
    sin6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&sin6->sin6_addr.s6_addr[12], &v4.sin_addr, 4);
    *len = sizeof *sin6;
    return 0;
  }
  struct sockaddr_in6 v6 = *(struct sockaddr_in6 *)ss;
  if (!IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr)) return EAFNOSUPPORT;
  struct sockaddr_in *sin = (struct sockaddr_in *)ss;
  memset(ss, 0, sizeof *ss);
  sin->sin_family = AF_INET;
  sin->sin_port = v6.sin6_port;
  memcpy(&sin->sin_addr, &v6.sin6_addr.s6_addr[12], 4);
  *len = sizeof *sin;
  return 0;
}

static int socket_family(int fd, failure *f) {
  int domain = 0;
  socklen_t len = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0)
    return fail(f, "getsockopt", "SO_DOMAIN", errno);
  if (domain != AF_INET && domain != AF_INET6) return fail(f, "getsockopt", "SO_DOMAIN", EAFNOSUPPORT);
  return domain;
}

/* ---- the options -------------------------------------------------------------------- */

static int set_int(int fd, int level, int name, int value, const char *option, failure *f) {
  if (setsockopt(fd, level, name, &value, sizeof value) != 0) return fail(f, "setsockopt", option, errno);
  return 0;
}

/*
 * RFC 2385 via TCP_MD5SIG: installs (keylen > 0) or removes (keylen == 0) the key for one
 * peer address, or with prefixlen >= 0 for a prefix (TCP_MD5SIG_EXT with
 * TCP_MD5SIG_FLAG_PREFIX, Linux 4.13). On a listener the kernel then drops every SYN from
 * that address that is unsigned or wrongly signed; an accepted socket inherits the key.
 * Keys are at most TCP_MD5SIG_MAXKEYLEN (80) bytes. Returns 1, or 0 when removing a key
 * that was not there (ENOENT), or -1.
 */
static int set_md5(int fd, const char *peer, const uint8_t *key, size_t keylen, int prefixlen, failure *f) {
  struct tcp_md5sig md;
  socklen_t alen;
  int family = socket_family(fd, f), err;
  if (family < 0) return -1;
  if (keylen > TCP_MD5SIG_MAXKEYLEN) return fail(f, "setsockopt", "TCP_MD5SIG", EINVAL);
  memset(&md, 0, sizeof md);
  err = parse_addr(peer, 0, &md.tcpm_addr, &alen);
  if (err == 0) err = to_family(&md.tcpm_addr, &alen, family);
  if (err != 0) return fail(f, "inet_pton", "TCP_MD5SIG peer address", err);
  md.tcpm_keylen = (uint16_t)keylen;
  if (keylen > 0) memcpy(md.tcpm_key, key, keylen);
  int optname = TCP_MD5SIG;
  if (prefixlen >= 0) {
    optname = TCP_MD5SIG_EXT;
    md.tcpm_flags = TCP_MD5SIG_FLAG_PREFIX;
    md.tcpm_prefixlen = (uint8_t)prefixlen;
  }
  int rc = setsockopt(fd, IPPROTO_TCP, optname, &md, sizeof md);
  err = errno;
  memset(md.tcpm_key, 0, sizeof md.tcpm_key); /* do not leave the key on the stack */
  if (rc == 0) return 1;
  if (keylen == 0 && err == ENOENT) return 0;
  return fail(f, "setsockopt", prefixlen >= 0 ? "TCP_MD5SIG_EXT" : "TCP_MD5SIG", err);
}

/*
 * RFC 5082 §3 (1): the TTL (IPv4) / hop limit (IPv6) of everything sent. On an AF_INET6
 * socket both are set, as a dual-stack socket talks IPv4 with IP_TTL.
 */
static int set_ttl(int fd, int ttl, failure *f) {
  int family = socket_family(fd, f);
  if (family < 0) return -1;
  if (family == AF_INET6 && set_int(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, ttl, "IPV6_UNICAST_HOPS", f) != 0)
    return -1;
  return set_int(fd, IPPROTO_IP, IP_TTL, ttl, "IP_TTL", f);
}

/*
 * RFC 5082 §3 (2): drop what arrives with a TTL / hop limit below minttl (255 for a directly
 * connected peer), SYNs included: IP_MINTTL (Linux 2.6.34) and, on AF_INET6 sockets,
 * IPV6_MINHOPCOUNT (Linux 2.6.35) too. 0 turns the check off.
 */
static int set_minttl(int fd, int minttl, failure *f) {
  int family = socket_family(fd, f);
  if (family < 0) return -1;
  if (family == AF_INET6 &&
      set_int(fd, IPPROTO_IPV6, IPV6_MINHOPCOUNT, minttl, "IPV6_MINHOPCOUNT", f) != 0)
    return -1;
  return set_int(fd, IPPROTO_IP, IP_MINTTL, minttl, "IP_MINTTL", f);
}

/* SO_BINDTODEVICE: only packets of this interface; "" unbinds. Changing a binding (or any
 * binding before Linux 5.7) needs CAP_NET_RAW. */
static int bind_device(int fd, const char *name, failure *f) {
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, (socklen_t)strlen(name)) != 0)
    return fail(f, "setsockopt", "SO_BINDTODEVICE", errno);
  return 0;
}

/* ---- the JavaScript functions ---------------------------------------------------------- */

static napi_value undefined_value(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

/* Reads argc arguments; the wrapper always passes them all. */
#define ARGS(n)                                                                                \
  size_t argc = n;                                                                             \
  napi_value argv[n];                                                                          \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL), "arguments");                   \
  if (argc < n) return throw_napi(env, "too few arguments")

/*
 * prepare(family 4|6, peer, key|null, ttl, minTtl, device|null, localAddress|null, localPort)
 * -> fd: a non-blocking, close-on-exec, unconnected TCP socket with every option already on it
 * (the MD5 key must be there before the SYN goes out), bound when a local address or port is
 * given. On any failure the socket is closed and the failure thrown. -1 means "not set".
 */
static napi_value js_prepare(napi_env env, napi_callback_info info) {
  ARGS(8);
  int32_t family, ttl, minttl, local_port;
  char peer[128], device[IF_NAMESIZE + 1], local[128];
  const uint8_t *key = NULL;
  size_t keylen = 0;
  bool has_device = !is_nullish(env, argv[5]), has_local = !is_nullish(env, argv[6]);
  CHECK(napi_get_value_int32(env, argv[0], &family), "family must be 4 or 6");
  CHECK(get_string(env, argv[1], peer, sizeof peer) ? napi_ok : napi_invalid_arg, "peer address");
  if (!is_nullish(env, argv[2]))
    CHECK(get_key(env, argv[2], &key, &keylen) ? napi_ok : napi_invalid_arg, "key must be a Uint8Array");
  CHECK(napi_get_value_int32(env, argv[3], &ttl), "ttl");
  CHECK(napi_get_value_int32(env, argv[4], &minttl), "minTtl");
  if (has_device) CHECK(get_string(env, argv[5], device, sizeof device) ? napi_ok : napi_invalid_arg, "device");
  if (has_local) CHECK(get_string(env, argv[6], local, sizeof local) ? napi_ok : napi_invalid_arg, "localAddress");
  CHECK(napi_get_value_int32(env, argv[7], &local_port), "localPort");
  if ((family != 4 && family != 6) || local_port < -1 || local_port > 65535)
    return throw_napi(env, "family or localPort out of range");

  failure f;
  int domain = family == 6 ? AF_INET6 : AF_INET;
  int fd = socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) {
    fail(&f, "socket", "socket", errno);
    return throw_failure(env, &f);
  }
  /* The device first, so that bind() may pick an address of that device. */
  if (has_device && bind_device(fd, device, &f) != 0) goto error;
  if (ttl >= 0 && set_ttl(fd, ttl, &f) != 0) goto error;
  if (minttl >= 0 && set_minttl(fd, minttl, &f) != 0) goto error;
  if (key != NULL && keylen > 0 && set_md5(fd, peer, key, keylen, -1, &f) != 1) goto error;
  if (has_local || local_port > 0) {
    struct sockaddr_storage ss;
    socklen_t len;
    int err = 0;
    if (has_local) {
      err = parse_addr(local, (uint16_t)(local_port > 0 ? local_port : 0), &ss, &len);
      if (err == 0) err = to_family(&ss, &len, domain);
    } else {
      err = parse_addr(domain == AF_INET6 ? "::" : "0.0.0.0", (uint16_t)local_port, &ss, &len);
    }
    if (err != 0) {
      fail(&f, "inet_pton", "local address", err);
      goto error;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
      fail(&f, "bind", "bind", errno);
      goto error;
    }
  }
  napi_value result;
  if (napi_create_int32(env, fd, &result) != napi_ok) {
    close(fd);
    return throw_napi(env, "fd");
  }
  return result;

error:
  close(fd);
  return throw_failure(env, &f);
}

/* setMd5(fd, peer, key|null, prefixLength|-1) -> true, or false when removing a key not there. */
static napi_value js_set_md5(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t fd, prefixlen;
  char peer[128];
  const uint8_t *key = NULL;
  size_t keylen = 0;
  CHECK(napi_get_value_int32(env, argv[0], &fd), "fd");
  CHECK(get_string(env, argv[1], peer, sizeof peer) ? napi_ok : napi_invalid_arg, "peer address");
  if (!is_nullish(env, argv[2]))
    CHECK(get_key(env, argv[2], &key, &keylen) ? napi_ok : napi_invalid_arg, "key must be a Uint8Array");
  CHECK(napi_get_value_int32(env, argv[3], &prefixlen), "prefixLength");
  failure f;
  int rc = set_md5(fd, peer, key, keylen, prefixlen, &f);
  if (rc < 0) return throw_failure(env, &f);
  napi_value result;
  CHECK(napi_get_boolean(env, rc == 1, &result), "result");
  return result;
}

static napi_value js_set_ttl(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd, ttl;
  failure f;
  CHECK(napi_get_value_int32(env, argv[0], &fd), "fd");
  CHECK(napi_get_value_int32(env, argv[1], &ttl), "ttl");
  if (set_ttl(fd, ttl, &f) != 0) return throw_failure(env, &f);
  return undefined_value(env);
}

static napi_value js_set_min_ttl(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd, minttl;
  failure f;
  CHECK(napi_get_value_int32(env, argv[0], &fd), "fd");
  CHECK(napi_get_value_int32(env, argv[1], &minttl), "minTtl");
  if (set_minttl(fd, minttl, &f) != 0) return throw_failure(env, &f);
  return undefined_value(env);
}

static napi_value js_bind_to_device(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  char name[IF_NAMESIZE + 1];
  failure f;
  CHECK(napi_get_value_int32(env, argv[0], &fd), "fd");
  CHECK(get_string(env, argv[1], name, sizeof name) ? napi_ok : napi_invalid_arg, "device name");
  if (bind_device(fd, name, &f) != 0) return throw_failure(env, &f);
  return undefined_value(env);
}

static int get_int(int fd, int level, int name, const char *option, int *out, failure *f) {
  socklen_t len = sizeof *out;
  if (getsockopt(fd, level, name, out, &len) != 0) return fail(f, "getsockopt", option, errno);
  return 0;
}

/* getOptions(fd) -> { family, ttl, minTtl, hopLimit?, minHopCount?, device }: for checks and logs. */
static napi_value js_get_options(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  int ttl, minttl, hops = 0, minhops = 0;
  char device[IF_NAMESIZE + 1] = "";
  socklen_t dlen = sizeof device - 1;
  failure f;
  CHECK(napi_get_value_int32(env, argv[0], &fd), "fd");
  int family = socket_family(fd, &f);
  if (family < 0 || get_int(fd, IPPROTO_IP, IP_TTL, "IP_TTL", &ttl, &f) != 0 ||
      get_int(fd, IPPROTO_IP, IP_MINTTL, "IP_MINTTL", &minttl, &f) != 0)
    return throw_failure(env, &f);
  if (family == AF_INET6 &&
      (get_int(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, "IPV6_UNICAST_HOPS", &hops, &f) != 0 ||
       get_int(fd, IPPROTO_IPV6, IPV6_MINHOPCOUNT, "IPV6_MINHOPCOUNT", &minhops, &f) != 0))
    return throw_failure(env, &f);
  if (getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device, &dlen) != 0) {
    fail(&f, "getsockopt", "SO_BINDTODEVICE", errno);
    return throw_failure(env, &f);
  }
  device[dlen] = '\0';

  napi_value o, v;
  CHECK(napi_create_object(env, &o), "object");
  CHECK(napi_create_int32(env, family == AF_INET6 ? 6 : 4, &v), "family");
  CHECK(napi_set_named_property(env, o, "family", v), "family");
  CHECK(napi_create_int32(env, ttl, &v), "ttl");
  CHECK(napi_set_named_property(env, o, "ttl", v), "ttl");
  CHECK(napi_create_int32(env, minttl, &v), "minTtl");
  CHECK(napi_set_named_property(env, o, "minTtl", v), "minTtl");
  if (family == AF_INET6) {
    CHECK(napi_create_int32(env, hops, &v), "hopLimit");
    CHECK(napi_set_named_property(env, o, "hopLimit", v), "hopLimit");
    CHECK(napi_create_int32(env, minhops, &v), "minHopCount");
    CHECK(napi_set_named_property(env, o, "minHopCount", v), "minHopCount");
  }
  CHECK(napi_create_string_utf8(env, device, NAPI_AUTO_LENGTH, &v), "device");
  CHECK(napi_set_named_property(env, o, "device", v), "device");
  return o;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  static const struct {
    const char *name;
    napi_callback cb;
  } fns[] = {
      {"prepare", js_prepare},         {"setMd5", js_set_md5},
      {"setTtl", js_set_ttl},          {"setMinTtl", js_set_min_ttl},
      {"bindToDevice", js_bind_to_device}, {"getOptions", js_get_options},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &fn) != napi_ok ||
        napi_set_named_property(env, exports, fns[i].name, fn) != napi_ok)
      return NULL;
  }
  return exports;
}
