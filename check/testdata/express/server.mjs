// An Express app as much SSE code is written: the compression middleware
// for the whole app, and an event stream that writes each event with
// res.write. The middleware compresses the stream and holds its events.
// GET /events?count=N&interval=MS sends N events, each its index and when
// it was sent, then ends; it prints "listening PORT" when it is ready.
import express from 'express';
import compression from 'compression';

const app = express();
app.use(compression());
app.get('/events', (req, res) => {
  const count = Math.min(Number(req.query.count) || 20, 1000);
  const interval = Math.min(Number(req.query.interval) || 100, 10000);
  res.set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  res.flushHeaders();
  let i = 0;
  const timer = setInterval(() => {
    res.write(`id: ${i}\ndata: {"seq":${i},"ts":"${new Date().toISOString()}"}\n\n`);
    if (++i === count) {
      clearInterval(timer);
      res.end();
    }
  }, interval);
  req.on('close', () => clearInterval(timer));
});
const server = app.listen(Number(process.env.PORT) || 0, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
