// The chat page: join a room over a websocket, show what the room says, send lines to it.
// Everything the server sends is JSON with a "type" (joined, message, left, error).
const joinForm = document.getElementById("join");
const sayForm = document.getElementById("say");
const text = document.getElementById("text");
const log = document.getElementById("log");
const status = document.getElementById("status");
let socket = null;

function show(kind, line) {
  const item = document.createElement("li");
  item.className = kind;
  item.textContent = line; // text, never markup: a message cannot inject HTML
  log.append(item);
  item.scrollIntoView({ block: "nearest" });
}

function describe(event) {
  switch (event.type) {
    case "joined":
      return ["notice", `${event.name} joined #${event.room}`];
    case "left":
      return ["notice", `${event.name} left #${event.room}`];
    case "message":
      return ["message", `${event.name}: ${event.text}`];
    default:
      return ["error", event.detail || "the server refused that"];
  }
}

joinForm.addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  if (socket) socket.close(1000);
  const name = document.getElementById("name").value.trim();
  const room = document.getElementById("room").value.trim();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/ws/${encodeURIComponent(room)}?name=${encodeURIComponent(name)}`;
  const current = new WebSocket(url);
  socket = current;
  log.replaceChildren();
  status.textContent = `Joining #${room}…`;
  current.addEventListener("open", () => {
    status.textContent = `In #${room} as ${name}.`;
    sayForm.hidden = false;
    text.focus();
  });
  current.addEventListener("message", (message) => {
    const [kind, line] = describe(JSON.parse(message.data));
    show(kind, line);
  });
  current.addEventListener("close", (closed) => {
    if (socket !== current) return; // replaced by a newer connection
    socket = null;
    sayForm.hidden = true;
    status.textContent = closed.code === 1000 ? "Not connected." : `Disconnected (${closed.code}).`;
  });
});

sayForm.addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  if (!socket || socket.readyState !== WebSocket.OPEN || !text.value) return;
  socket.send(JSON.stringify({ text: text.value }));
  text.value = "";
});
