// Harness for tests and benchmarks: reference daemons and fast test peers.
export {};
