"""A real HTTP server on loopback that speaks the OpenAI chat-completions API, with
deterministic answers and injected faults: the fixture behind the LLM translation,
synthesis and pipeline tests."""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "sk-test-0123456789-SECRET-abcdef"


def answer(texts: list[str], target: str) -> list[str]:
    """The fake model's translation: target name, then the text reversed."""
    return [f"[{target}] {t[::-1]}" for t in texts]


def translation_reply(body: dict[str, Any]) -> str:
    """The reply to a translation request of ``LLMTranslator``: ``answer`` as JSON."""
    texts = json.loads(body["messages"][1]["content"])["texts"]
    target = re.search(r"into (\w+)", body["messages"][0]["content"])
    good = answer(texts, target.group(1) if target else "?")
    return json.dumps({"translations": good}, ensure_ascii=False)


ACTIVITIES = (
    "a weekly budget in rupees", "a letter to the district office", "a study timetable",
    "a short speech for the Diwali function", "a plan to sell more at the market",
    "three cheap dinner recipes", "a checklist for the monsoon", "a polite complaint email",
    "an invitation for the village meeting", "a reading list for the summer",
)
OPENINGS = ("Please help me write", "Can you draft", "I need you to prepare",
            "Help me put together", "Could you suggest")
INDIC_WORDS = {  # common words; a text maps its distinct words onto distinct words here
    "Hindi": "मैं एक शिक्षक हूँ और पुणे में रहता किसान बाज़ार गाँव विद्यालय पत्र गीत घर पानी "
             "खाना दिन रात सुबह शाम काम पैसा परिवार बच्चे माँ पिता दोस्त शहर सड़क किताब बारिश "
             "खेत पेड़ फूल मंदिर त्योहार नदी समय हमेशा अच्छा नया पुराना",
    "Tamil": "நான் ஒரு ஆசிரியர் சென்னையில் வாழ்கிறேன் விவசாயி சந்தை கிராமம் பள்ளி வீடு "
             "தண்ணீர் சாப்பாடு நாள் இரவு காலை மாலை வேலை பணம் குடும்பம் குழந்தைகள் அம்மா "
             "அப்பா நண்பன் நகரம் சாலை புத்தகம் மழை வயல் மரம் பூ கோவில் திருவிழா ஆறு நேரம் "
             "ஒவ்வொரு எப்போதும் நல்ல புதிய பழைய",
    "Bengali": "আমি একজন শিক্ষক কলকাতায় থাকি কৃষক বাজার গ্রাম বিদ্যালয় চিঠি বাড়ি জল খাবার "
               "দিন রাত সকাল সন্ধ্যা কাজ টাকা পরিবার শিশু মা বাবা বন্ধু শহর রাস্তা বই বৃষ্টি "
               "মাঠ গাছ ফুল মন্দির উৎসব নদী সময় প্রতিদিন সবসময় ভালো নতুন পুরনো",
}


def _rng(*parts: str) -> random.Random:
    return random.Random(hashlib.sha256("|".join(parts).encode()).hexdigest())


def fake_instruction(persona: str, negative: bool = False) -> str:
    """The fake model's instruction for a persona: an English sentence chosen by a hash of
    the persona, quoting what follows "who" in it (different personas, different texts)."""
    rng = _rng(persona, "negative" if negative else "instruction")
    words = re.findall(r"[A-Za-z]+", persona)
    place = next((w for w in reversed(words) if w[0].isupper() and w != "A"), "my town")
    if negative:
        return (f"{rng.choice(OPENINGS)} a guide to deep-sea diving in Iceland for a "
                f"retired astronaut, number {rng.randint(1, 999)}.")
    about = persona.partition(" who ")[2].rstrip(".") or "works here"
    return (f"{rng.choice(OPENINGS)} {rng.choice(ACTIVITIES)} for someone in {place} who "
            f"{about}, with {rng.randint(2, 9)} clear steps.")


def synthesis_reply(body: dict[str, Any]) -> str:
    """The reply to a pair-synthesis request: ``fake_instruction`` of its persona, with a
    negative when the system prompt asks for one."""
    persona = next(m["content"] for m in reversed(body["messages"])
                   if m["role"] == "user" and m["content"].startswith("Persona: "))
    persona = persona.removeprefix("Persona: ")
    obj = {"instruction": fake_instruction(persona)}
    if '"negative"' in body["messages"][0]["content"]:
        obj["negative"] = fake_instruction(persona, negative=True)
    return json.dumps(obj)


def persona_reply(body: dict[str, Any]) -> str:
    """The reply to a persona-generation request: n personas naming domain and region."""
    user = body["messages"][1]["content"]
    domain = re.search(r"Domain: (.*)", user).group(1)  # type: ignore[union-attr]
    region = re.search(r"Region: (.*)", user).group(1)  # type: ignore[union-attr]
    n = int(re.search(r"Write (\d+) personas", user).group(1))  # type: ignore[union-attr]
    return json.dumps({"personas": [
        f"Person {k} of {region}: a worker in {domain} aged {20 + 7 * k} who keeps "
        f"{k + 2} goats and writes poems in the evening." for k in range(1, n + 1)]})


def fake_translation(text: str, target: str) -> str:
    """A deterministic stand-in for a translation: the i-th distinct word of ``text`` becomes
    the i-th word of a permutation of INDIC_WORDS[target] chosen by a hash of the text, so
    the output repeats words exactly where the source does (and passes LID)."""
    words = INDIC_WORDS[target].split()
    order = _rng(text, target).sample(words, len(words))
    mapping: dict[str, str] = {}
    out = []
    for w in re.findall(r"\w+", text.lower()):
        mapping.setdefault(w, order[len(mapping) % len(order)])
        out.append(mapping[w])
    return " ".join(out) + "।"


def indic_translation_reply(body: dict[str, Any]) -> str:
    """The reply to a translation request: ``fake_translation`` of every text."""
    texts = json.loads(body["messages"][1]["content"])["texts"]
    target = re.search(r"into (\w+)", body["messages"][0]["content"]).group(1)  # type: ignore[union-attr]
    out = [fake_translation(t, target) for t in texts]
    return json.dumps({"translations": out}, ensure_ascii=False)


def pipeline_reply(body: dict[str, Any]) -> str:
    """Dispatch on the system prompt: synthesis, persona generation or translation."""
    system = body["messages"][0]["content"]
    if system.startswith("You are a professional translator"):
        return indic_translation_reply(body)
    if system.startswith("You create realistic"):
        return persona_reply(body)
    return synthesis_reply(body)


class FakeChatServer:
    """OpenAI-style POST /v1/chat/completions on 127.0.0.1.

    ``reply(body)`` makes the content of a good answer (default ``translation_reply``).
    ``faults`` is consumed one per request, in arrival order: "429" (with Retry-After),
    "500", "401" (echoes the bearer token in its error message, as a careless server
    might), "timeout" (answers after ``slow_s``), "malformed" (prose before the JSON),
    "fenced" (JSON inside a Markdown fence), "short" (one translation too few), "length"
    (cut off). Any other request gets the good answer. ``on_request(n, body)`` is called
    with the 1-based request count before answering (a test can kill a client there).
    """

    def __init__(self, faults: list[str] | None = None, slow_s: float = 1.0,
                 retry_after: str = "0", delay_s: float = 0.0,
                 reply: Callable[[dict[str, Any]], str] = translation_reply,
                 on_request: Callable[[int, dict[str, Any]], None] | None = None) -> None:
        self.faults = list(faults or [])
        self.slow_s = slow_s
        self.retry_after = retry_after
        self.delay_s = delay_s
        self.reply = reply
        self.on_request = on_request
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    server.requests.append({"path": self.path, "headers": headers,
                                            "body": body})
                    count = len(server.requests)
                    fault = server.faults.pop(0) if server.faults else "ok"
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if server.on_request is not None:
                        server.on_request(count, body)
                    time.sleep(server.delay_s)
                    self.respond(body, fault)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (time-out fault) or was killed
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def send(self, status: int, payload: dict[str, Any],
                     headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def respond(self, body: dict[str, Any], fault: str) -> None:
                if fault in ("429", "500"):
                    self.send(int(fault), {"error": {"message": f"injected {fault}"}},
                              {"Retry-After": server.retry_after} if fault == "429" else None)
                    return
                if fault == "401":
                    key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    self.send(401, {"error": {"message": f"Incorrect API key provided: {key}"}})
                    return
                if fault == "timeout":
                    time.sleep(server.slow_s)
                content = server.reply(body)
                finish = "stop"
                if fault == "malformed":
                    content = "Sure! Here are the translations: " + content
                elif fault == "fenced":
                    content = "```json\n" + content + "\n```"
                elif fault == "short":
                    good = json.loads(content)["translations"]
                    content = json.dumps({"translations": good[:-1]}, ensure_ascii=False)
                elif fault == "length":
                    content, finish = content[: len(content) // 2], "length"
                self.send(200, {
                    "id": "chatcmpl-test", "object": "chat.completion", "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": finish,
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                })

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
