# The bgp-ts socket-option addon (native/sockopt.c): TCP-MD5 (RFC 2385), GTSM (RFC 5082),
# SO_BINDTODEVICE. Linux only; elsewhere nothing is built and src/sockopt reports it.
{
  "targets": [
    {
      "target_name": "bgp_sockopt",
      "conditions": [
        ["OS=='linux'", {
          "sources": ["native/sockopt.c"],
          "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
        }, {
          "type": "none",
        }],
      ],
    },
  ],
}
