// An MCP server on the official TypeScript SDK, stateless Streamable HTTP on
// loopback, for the check's stream-mode tests. Its one tool, "count",
// answers a tools/call with an SSE stream: a progress notification every
// interval ms (count of them, when the call asks for progress), each saying
// when it was sent, then the result. It prints "listening PORT" when it is
// ready (on PORT from the environment, or any free port), then one JSON
// line for each notification it sends: its index in the stream, when (ms
// since the epoch), and the request's Host, X-Forwarded-Host,
// Accept-Encoding and X-Ground-Truth, by which the tests tell their reads
// apart.
import http from 'node:http';
import * as z from 'zod/v4';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

function newServer() {
  const server = new McpServer({ name: 'tickstream-check-mcp', version: '1.0.0' });
  server.registerTool('count', {
    description: 'Counts to count, one progress notification every interval ms',
    inputSchema: { count: z.number().int().min(1).max(1000), interval: z.number().int().min(1).max(10000) },
  }, async ({ count, interval }, extra) => {
    const headers = extra.requestInfo?.headers ?? {};
    const token = extra._meta?.progressToken;
    for (let i = 1; i <= count; i++) {
      await new Promise((resolve) => setTimeout(resolve, interval));
      if (token !== undefined) {
        console.log(JSON.stringify({
          record: i - 1,
          sent: performance.timeOrigin + performance.now(),
          host: headers.host ?? '',
          forwarded: headers['x-forwarded-host'] ?? '',
          encoding: headers['accept-encoding'] ?? '',
          truth: headers['x-ground-truth'] ?? '',
        }));
        await extra.sendNotification({
          method: 'notifications/progress',
          params: { progressToken: token, progress: i, total: count, message: `step ${i} at ${new Date().toISOString()}` },
        });
      }
    }
    return { content: [{ type: 'text', text: `counted to ${count}` }] };
  });
  return server;
}

const httpServer = http.createServer(async (req, res) => {
  if (req.url !== '/mcp' || req.method !== 'POST') {
    res.writeHead(405, { 'Content-Type': 'application/json' }).end('{"error":"POST /mcp only"}');
    return;
  }
  const server = newServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => {
    transport.close();
    server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res);
});
httpServer.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`listening ${httpServer.address().port}`);
});
