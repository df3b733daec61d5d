/** The response head of a server-sent-events stream (WHATWG HTML 9.2), for the REST API and the console. */
export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  // nginx and similar proxies would buffer the stream otherwise.
  'x-accel-buffering': 'no',
} as const;
