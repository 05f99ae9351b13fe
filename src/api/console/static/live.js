// The live transcript: utterances recorded while the page is open are
// appended as GET /events announces them. Where the server has no event
// stream, or refuses it, the page simply stays as it was rendered.
(function () {
  "use strict";

  var transcript = document.getElementById("transcript");
  if (!transcript || !transcript.dataset.events || !window.EventSource) {
    return;
  }

  // An event names what was stored: one utterance, a turn's utterances, or
  // the utterance itself.
  function utterancesOf(event) {
    var data = event && event.data !== undefined ? event.data : event;
    if (!data) { return []; }
    if (Array.isArray(data.utterances)) { return data.utterances; }
    if (data.utterance) { return [data.utterance]; }
    if (typeof data.text === "string" && data.speaker) { return [data]; }
    return [];
  }

  function keyOf(utterance) {
    return utterance.turn_number + ":" + utterance.speaker;
  }

  function shown(key) {
    var items = transcript.children;
    for (var i = 0; i < items.length; i += 1) {
      if (items[i].dataset.key === key) { return true; }
    }
    return false;
  }

  function capitalised(word) {
    return word.charAt(0).toUpperCase() + word.slice(1);
  }

  // Built with textContent only: what was said is shown as text, never parsed.
  function append(utterance) {
    var key = keyOf(utterance);
    if (shown(key)) { return; }
    var item = document.createElement("li");
    item.className = "utterance utterance--" + String(utterance.speaker).replace(/[^a-z]/g, "");
    item.dataset.key = key;
    var meta = document.createElement("p");
    meta.className = "utterance__meta";
    var speaker = document.createElement("span");
    speaker.className = "utterance__speaker";
    speaker.textContent = capitalised(String(utterance.speaker));
    meta.appendChild(speaker);
    meta.appendChild(document.createTextNode(" · turn " + utterance.turn_number));
    var text = document.createElement("p");
    text.className = "utterance__text";
    text.textContent = String(utterance.text);
    item.appendChild(meta);
    item.appendChild(text);
    transcript.appendChild(item);
    var empty = document.getElementById("transcript-empty");
    if (empty) { empty.remove(); }
  }

  function received(message) {
    var event;
    try {
      event = JSON.parse(message.data);
    } catch (error) {
      return;
    }
    utterancesOf(event).forEach(append);
  }

  var source = new EventSource(transcript.dataset.events);
  source.addEventListener("session.utterance_added", received);
  source.addEventListener("session.turn_recorded", received);
  window.addEventListener("pagehide", function () { source.close(); });
})();
