"""Texts with known words: the references for WER in the tests and in `voxedge bench whisper`.

Two public-domain recordings that moonshine-voice ships, and sentences that espeak-ng speaks.
"""

TWO_CITIES = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, "
    "it was the season of Darkness, it was the spring of hope, it was the winter of despair, we had everything "
    "before us, we had nothing before us, we were all going direct to Heaven, we were all going direct the "
    "other way - in short, the period was so far like the present period, that some of its noisiest "
    "authorities insisted on its being received, for good or for evil, in the superlative degree of "
    "comparison only."
)
BECKETT = "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better."
RECORDINGS = {"two_cities.wav": TWO_CITIES, "beckett.wav": BECKETT}

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "She sells sea shells by the sea shore on a sunny morning.",
    "A large language model runs on the device without sending any audio to the cloud.",
    "Seven hundred and twelve people attended the meeting on Tuesday afternoon.",
    "Turn left at the next corner and then walk straight ahead for two blocks.",
    "The weather today is cold and windy with a chance of rain in the evening.",
    "Open the window, the room is much too warm for a good night of sleep.",
]

# espeak-ng speech in seven of Voxtral's languages that whisper-base recognises when espeak-ng says them:
# language -> (espeak-ng voice, words per minute, text). Its other voices (hi, ru, ja, zh, ar) come out too
# garbled for a base model to tell their language.
MULTILINGUAL = {
    "en": ("en-us", 160, "The weather today is cold and windy with a chance of rain in the evening."),
    "de": ("de", 150, "Der Zug nach Berlin fährt heute Abend um acht Uhr vom zweiten Gleis ab."),
    "es": ("es", 150, "Mañana vamos a la playa con mis amigos para nadar y comer pescado."),
    "it": ("it", 150, "Il ristorante vicino alla stazione serve la pizza più buona della città."),
    "fr": ("fr", 120, "Je voudrais un café et un croissant, s'il vous plaît."),
    "nl": ("nl", 130, "Goedemorgen, ik wil graag een kopje koffie en een broodje met kaas."),
    "pt": ("pt-br", 150, "Bom dia a todos, hoje vamos falar sobre a história da cidade de Lisboa."),
}
