// The session driver over node:net.
export {};
