# Tabby's netlink socket addon (native/netlink.c): AF_NETLINK sockets, setns around socket()
# and /proc/sys, uv_poll readiness. Linux only; elsewhere nothing is built and src/client/native
# reports it.
{
  "targets": [
    {
      "target_name": "tabby_netlink",
      "conditions": [
        ["OS=='linux'", {
          "sources": ["native/netlink.c"],
          "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
        }, {
          "type": "none",
        }],
      ],
    },
  ],
}
