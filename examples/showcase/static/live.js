// Live updates: new notes arrive as server-sent events and are prepended to the list.
const list = document.getElementById("notes");
const source = new EventSource("/events");
source.addEventListener("note", (event) => {
  const note = JSON.parse(event.data);
  const item = document.createElement("li");
  const who = document.createElement("strong");
  who.textContent = note.author;
  item.append(who, " ", note.text);
  list.querySelector(".empty")?.remove();
  list.prepend(item);
});
