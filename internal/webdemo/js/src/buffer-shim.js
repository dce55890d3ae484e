// rsocket-js uses Node's Buffer; esbuild injects this polyfill wherever `Buffer` is referenced.
export { Buffer } from "buffer";
