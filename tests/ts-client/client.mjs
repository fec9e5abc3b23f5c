// The TypeScript MCP SDK against skillcell; prints what it saw as one JSON object on stdout.
//   node client.mjs stdio COMMAND [ARGS...]
//   node client.mjs http URL [BEARER_TOKEN]
// With WAIT_LIST_CHANGED=1 it then prints READY on stderr and waits (5 s at most) for
// notifications/tools/list_changed before printing.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const [kind, target, ...rest] = process.argv.slice(2);
let transport;
if (kind === "stdio") {
  transport = new StdioClientTransport({ command: target, args: rest, env: process.env, stderr: "inherit" });
} else if (kind === "http") {
  const headers = { "X-Skillcell-Secret-Api-Token": "header-value-7" };
  if (rest[0]) headers.Authorization = `Bearer ${rest[0]}`;
  transport = new StreamableHTTPClientTransport(new URL(target), { requestInit: { headers } });
} else {
  console.error("usage: node client.mjs stdio COMMAND [ARGS...] | http URL [TOKEN]");
  process.exit(2);
}

let negotiated;
const setVersion = transport.setProtocolVersion?.bind(transport);
transport.setProtocolVersion = (v) => { negotiated = v; setVersion?.(v); };

const client = new Client({ name: "skillcell-ts-test", version: "0.0.0" });
const notifications = [];
client.setNotificationHandler(ToolListChangedNotificationSchema, (n) => { notifications.push(n.method); });
await client.connect(transport);

async function settle(promise) {
  try { return { ok: await promise }; } catch (e) { return { error: { code: e.code, message: e.message } }; }
}

const tools = [];
let cursor;
do {
  const page = await client.listTools(cursor ? { cursor } : {});
  tools.push(...page.tools);
  cursor = page.nextCursor;
} while (cursor);

const progress = [];
const structured = await settle(client.callTool(
  { name: "test_kit_structured", arguments: { word: "typed" } },
  undefined,
  { onprogress: (p) => progress.push(p) },
));
const echo = await settle(client.callTool({ name: "test_kit_echo", arguments: { word: "from-ts" } }));
const invalid = await settle(client.callTool({ name: "test_kit_echo", arguments: { word: 3 } }));
const mismatch = await settle(client.callTool({ name: "test_kit_mismatch", arguments: {} }));
const unknown = await settle(client.callTool({ name: "no_such_tool", arguments: {} }));
const secret = await settle(client.callTool({
  name: "test_secretive_whoami", arguments: {}, _meta: { "skillcell/secrets": { API_TOKEN: "meta-value-42" } },
}));
const headerSecret = await settle(client.callTool({ name: "test_secretive_whoami", arguments: {} }));
const files = await settle(client.callTool({ name: "test_kit_files", arguments: {} }));
const link = files.ok?.content.find((c) => c.type === "resource_link" && c.name === "report.txt");
const report = link ? await settle(client.readResource({ uri: link.uri })) : null;
const resources = await client.listResources();

if (process.env.WAIT_LIST_CHANGED) {
  console.error("READY");
  const deadline = Date.now() + 5000;
  while (!notifications.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

console.log(JSON.stringify({
  negotiated,
  capabilities: client.getServerCapabilities(),
  tools: tools.map((t) => ({ name: t.name, title: t.title, outputSchema: t.outputSchema, _meta: t._meta })),
  structured, echo, invalid, mismatch, unknown, secret, headerSecret, files, report,
  resources: resources.resources.map((r) => r.uri),
  progress,
  notifications,
}));
await client.close();
