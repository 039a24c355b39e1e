// Native socket options (TCP-MD5, GTSM): filled in by the sockopt work.
export {};
