// An MCP server on the official TypeScript SDK, stateless Streamable HTTP on
// loopback, for the check's stream-mode tests. Its one tool, "count",
// answers a tools/call with an SSE stream: a progress notification every
// interval ms (count of them, when the call asks for progress), then the
// result. It prints "listening PORT" when it is ready.
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
    const token = extra._meta?.progressToken;
    for (let i = 1; i <= count; i++) {
      await new Promise((resolve) => setTimeout(resolve, interval));
      if (token !== undefined) {
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
