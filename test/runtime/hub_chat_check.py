#!/usr/bin/env python3
"""Checks the chat prompts of `gai-run generate --chat` and `gai-run chat` on
the hub fixtures against transformers' apply_chat_template ids, which
test/fixtures/make_chat_configs.py recorded in test/fixtures/hub/chat-ids.json
(so that no transformers is needed here).

    hub_chat_check.py CHAT_IDS families        # the families, one a line
    hub_chat_check.py CHAT_IDS check DIR       # DIR/FAMILY.gai for each

For each family it runs gai-run (from PATH) and compares:
  generate --chat --prompt Hello                 with conversation "user"
  generate --chat --system ... --prompt ...      with "system" (or its refusal)
  chat, stdin "Hello"                            first turn with "user"
  chat --max-new-tokens 0, stdin chats' lines    every turn with "chat" and
  chat --system ... --max-new-tokens 0           "chat-system": the replies are
                                                 empty, so each turn's prompt is
                                                 known without running a model
  generate --prompt TEXT                         for each conversation's text as
                                                 jinja2 rendered it: the text
                                                 tokenized as transformers'
                                                 tokenizer(TEXT) tokenizes it
It prints one line a family (naming the conversations where chat-ids.json
says AutoTokenizer's ids differ, which is not checked), and for each
difference the command, where the ids part and the tokens around there. Exit
status 1 if any differ.
"""
import json
import os
import shlex
import subprocess
import sys


def token_names(family_dir):
    """id -> token string, from the fixture's tokenizer.json (for messages)."""
    try:
        with open(os.path.join(family_dir, "tokenizer.json"), encoding="utf-8") as f:
            tok = json.load(f)
    except OSError:
        return {}
    names = {i: t for t, i in tok["model"]["vocab"].items()}
    names.update({a["id"]: a["content"] for a in tok["added_tokens"]})
    return names


def run(args, stdin=""):
    p = subprocess.run(args, input=stdin.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    err = p.stderr.decode(errors="replace")
    prompts = [[int(x) for x in line[len("prompt:"):].split()]
               for line in err.splitlines() if line.startswith("prompt:")]
    return p.returncode, prompts, err


def describe(got, want, names):
    n = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    lo = max(0, n - 3)
    show = lambda ids: " ".join(f"{i}:{names.get(i, '?')!r}" for i in ids[lo:n + 4])
    return (f"    {len(got)} ids from gai, {len(want)} from transformers; first difference at {n}\n"
            f"    gai:          ... {show(got)}\n"
            f"    transformers: ... {show(want)}")


def check_family(spec, conversations, artifact, names):
    """Returns (checks passed, list of failure texts, notes)."""
    failures, notes, passed = [], [], 0
    convs = spec["conversations"]

    def compare(what, args, stdin, wants):
        """wants: a list of {"ids"} / {"error"}, one a prompt the run makes."""
        nonlocal passed
        rc, prompts, err = run(args, stdin)
        command = " ".join(shlex.quote(a) for a in args)
        if stdin:
            command = f"printf %s {shlex.quote(stdin)} | " + command
        errors = [w["error"] for w in wants if "error" in w]
        want_ids = [w["ids"] for w in wants if "ids" in w]
        if errors:
            # transformers' template raised; gai must refuse with its message.
            if rc != 0 and errors[0] in err and prompts == want_ids:
                passed += 1
                notes.append(f"{what} refused: {errors[0]}")
            else:
                failures.append(f"  {what}: transformers refuses ({errors[0]}); gai-run exited "
                                f"{rc}:\n    $ {command}\n    {err.strip()[:400]}")
            return
        if rc != 0:
            failures.append(f"  {what}: gai-run exited {rc}:\n    $ {command}\n    {err.strip()[:400]}")
            return
        if len(prompts) != len(want_ids):
            failures.append(f"  {what}: {len(prompts)} prompts printed, want {len(want_ids)}:\n"
                            f"    $ {command}")
            return
        for turn, (got, want) in enumerate(zip(prompts, want_ids)):
            if got != want:
                label = what if len(want_ids) == 1 else f"{what}, turn {turn + 1}"
                failures.append(f"  {label}: ids differ\n    $ {command}\n" +
                                describe(got, want, names))
                return
        passed += 1

    gen = ["gai-run", "generate", artifact, "--print-prompt-ids", "--max-new-tokens", "1"]
    chat = ["gai-run", "chat", artifact, "--print-prompt-ids", "--max-new-tokens", "0"]

    def user_text(name):
        return [m["content"] for m in conversations[name] if m["role"] == "user"][-1]

    def system_text(name):
        return next((m["content"] for m in conversations[name] if m["role"] == "system"), None)

    compare("generate --chat user", gen + ["--chat", "--prompt", user_text("user")], "",
            [convs["user"]])
    compare("generate --chat system",
            gen + ["--chat", "--system", system_text("system"), "--prompt", user_text("system")],
            "", [convs["system"]])
    compare("chat user", chat, user_text("user") + "\n", [convs["user"]])
    for name, c in spec["chats"].items():
        args = chat + (["--system", c["system"]] if c["system"] is not None else [])
        turns = c["turns"]
        # gai-run chat stops at the first turn the template refuses.
        refused = next((i for i, t in enumerate(turns) if "error" in t), None)
        if refused is not None:
            turns = turns[:refused + 1]
        compare(name, args, "".join(line + "\n" for line in c["lines"]), turns)
    # The rendered text, as a plain prompt: special tokens in it are tokens,
    # and the tokenizer adds its own (a bos) as transformers' tokenizer(text).
    for name, c in convs.items():
        if "text" in c:
            compare(f"text of {name}", gen + ["--prompt", c["text"]], "", [{"ids": c["text_ids"]}])
    return passed, failures, notes


def main():
    path, mode = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if mode == "families":
        print("\n".join(data["families"]))
        return 0
    out_dir = sys.argv[3]
    hub = os.path.dirname(os.path.abspath(path))
    status = 0
    for family, spec in data["families"].items():
        names = token_names(os.path.join(hub, "hub-" + family))
        passed, failures, notes = check_family(
            spec, data["conversations"], os.path.join(out_dir, family + ".gai"), names)
        total = passed + len(failures)
        line = f"{family} ({spec['template']}): {passed} of {total} as transformers"
        if notes:
            line += " (" + "; ".join(notes) + ")"
        # Not checked: recorded where AutoTokenizer's class gives other ids
        # than tokenizer.json (make_chat_configs.py says why).
        auto = [name for name, c in spec["conversations"].items() if "auto" in c]
        if auto:
            line += (f"; AutoTokenizer ({spec['auto_tokenizer_class']}) differs on "
                     + ", ".join(auto))
        print(line)
        for f in failures:
            print(f)
        if failures:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
