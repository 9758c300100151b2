// The live-captions page: microphone -> AudioWorklet (16-bit PCM blocks) -> WebSocket /v1/live ->
// final text (kept) and partial text (replaced by the next) on screen. Messages: docs/server.md.
//
// Address options: ?token=T (or #token=T) when the server has one, ?language=xx, ?theme=dark|light,
// ?autostart=1 for a kiosk that starts without a click (the browser must already allow the microphone).

const params = new URLSearchParams(location.search);
const hash = new URLSearchParams(location.hash.slice(1));
const token = params.get("token") || hash.get("token");
const language = params.get("language");
const KEEP_FINALS = 400; // older caption pieces leave the page, so a kiosk can run for weeks
const BLOCK_SECONDS = 0.1;

const $ = (id) => document.getElementById(id);
const finalEl = $("final"), partialEl = $("partial"), statusEl = $("status"), startEl = $("start");
let audio = null; // {context, stream, node}
let socket = null;
let running = false;
let retry = 1;

function status(text, alert = false) {
  statusEl.textContent = text;
  statusEl.classList.toggle("alert", alert);
}

function addFinal(text) {
  const piece = document.createElement("span");
  piece.className = "final";
  piece.textContent = text;
  finalEl.append(piece);
  while (finalEl.childElementCount > KEEP_FINALS) finalEl.firstElementChild.remove();
}

function onMessage(message) {
  switch (message.type) {
    case "ready":
      status(`Listening · ${message.model}`);
      retry = 1;
      break;
    case "partial":
      partialEl.textContent = message.text;
      break;
    case "final":
      addFinal(message.text);
      partialEl.textContent = "";
      break;
    case "utterance":
      finalEl.append(document.createElement("br"));
      break;
    case "dropped":
      status(`The server is busy: ${message.seconds.toFixed(1)} s of audio were skipped`, true);
      break;
    case "error":
      status(message.message, true);
      break;
    case "done": // after Stop: every final has arrived
      if (!running) socket.close();
      break;
  }
}

function connect() {
  if (socket) {
    socket.onclose = null; // a stream stopped but not yet done: its last words are not wanted now
    socket.close();
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = token ? `?token=${encodeURIComponent(token)}` : "";
  socket = new WebSocket(`${scheme}://${location.host}/v1/live${query}`);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => socket.send(JSON.stringify({
    type: "start", sample_rate: audio.context.sampleRate, encoding: "s16le", channels: 1, language,
  }));
  socket.onmessage = (event) => onMessage(JSON.parse(event.data));
  socket.onclose = (event) => {
    if (event.code === 4401) {
      document.body.classList.add("refused");
      status("Not authorised: open this page with the server's token, as /?token=YOUR_TOKEN", true);
      stop();
    } else if (running) {
      status(`Disconnected; reconnecting in ${retry} s`, true);
      setTimeout(() => running && connect(), retry * 1000);
      retry = Math.min(retry * 2, 30);
    }
  };
}

async function start() {
  if (!navigator.mediaDevices || !window.AudioWorkletNode) {
    status("This page needs a secure address for the microphone: open it as http://localhost:PORT or over https", true);
    return;
  }
  running = true;
  startEl.textContent = "Stop";
  status("Starting the microphone…");
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    const context = new AudioContext();
    await context.audioWorklet.addModule("/static/capture-worklet.js");
    const node = new AudioWorkletNode(context, "voxedge-capture", {
      processorOptions: { chunk: Math.round(context.sampleRate * BLOCK_SECONDS) },
    });
    node.port.onmessage = (event) => socket && socket.readyState === WebSocket.OPEN && socket.send(event.data);
    context.createMediaStreamSource(stream).connect(node);
    node.connect(context.destination); // the worklet writes silence; the connection keeps it running
    audio = { context, stream, node };
  } catch (error) {
    status(`No microphone: ${error.message}`, true);
    stop();
    return;
  }
  connect();
}

function stop() {
  running = false;
  startEl.textContent = "Start captions";
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "stop" }));
  if (audio) {
    audio.stream.getTracks().forEach((track) => track.stop());
    audio.context.close();
    audio = null;
  }
}

const isDark = () => getComputedStyle(document.documentElement).colorScheme.includes("dark");

function setTheme(theme) {
  document.documentElement.dataset.theme = theme;
  localStorage.setItem("voxedge-theme", theme);
  $("theme").textContent = isDark() ? "Light" : "Dark";
}

function toggleTheme() {
  setTheme(isDark() ? "light" : "dark");
}

function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen();
  else document.documentElement.requestFullscreen();
}

// controls fade out after a few seconds without the pointer, as a wall screen wants
let idleTimer;
function wake() {
  document.body.classList.remove("idle");
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => running && document.body.classList.add("idle"), 4000);
}

const savedTheme = params.get("theme") || localStorage.getItem("voxedge-theme");
if (savedTheme === "dark" || savedTheme === "light") setTheme(savedTheme);
$("theme").textContent = isDark() ? "Light" : "Dark";
startEl.addEventListener("click", () => (running ? stop() : start()));
$("fullscreen").addEventListener("click", toggleFullscreen);
$("theme").addEventListener("click", toggleTheme);
document.addEventListener("keydown", (event) => {
  if (event.key === "f") toggleFullscreen();
  if (event.key === "t") toggleTheme();
});
document.addEventListener("pointermove", wake);
if (params.get("autostart") === "1") start();
