// Runs on the browser's audio thread: microphone samples (float32, the context's rate) -> 16-bit PCM
// blocks of `chunk` frames, posted to the page, which sends them over the WebSocket.
class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.chunk = options.processorOptions.chunk;
    this.block = new Int16Array(this.chunk);
    this.filled = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels.length === 0) return true;
    const frames = channels[0].length;
    for (let i = 0; i < frames; i++) {
      let sum = 0;
      for (const channel of channels) sum += channel[i];
      const s = Math.max(-1, Math.min(1, sum / channels.length));
      this.block[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      if (this.filled === this.chunk) {
        this.port.postMessage(this.block.buffer, [this.block.buffer]);
        this.block = new Int16Array(this.chunk);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("voxedge-capture", CaptureProcessor);
