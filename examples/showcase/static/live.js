// Live updates: new notes arrive as server-sent events and are put at the top of the list;
// deleted ones go away. (Reloading the page shows the buttons of the new ones.)
const list = document.getElementById("notes");
const source = new EventSource("/events");
source.addEventListener("note", (event) => {
  const note = JSON.parse(event.data);
  if (document.getElementById(`note-${note.id}`)) return;
  const item = document.createElement("li");
  item.id = `note-${note.id}`;
  const who = document.createElement("strong");
  who.textContent = note.author;
  item.append(who, " ", note.text);
  list.querySelector(".empty")?.remove();
  const firstUnpinned = list.querySelector("li:not(.pinned)");
  list.insertBefore(item, firstUnpinned);
});
source.addEventListener("deleted", (event) => {
  document.getElementById(`note-${JSON.parse(event.data).id}`)?.remove();
});
