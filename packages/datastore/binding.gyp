# The datastore's flock(2) addon (native/flock.c), for the YAML-directory backend's
# cross-process write lock. Linux only; elsewhere nothing is built and the backend says so.
{
  "targets": [
    {
      "target_name": "tabby_flock",
      "conditions": [
        ["OS=='linux'", {
          "sources": ["native/flock.c"],
          "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
        }, {
          "type": "none",
        }],
      ],
    },
  ],
}
