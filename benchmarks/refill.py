"""Offline continuous batching: a refilled running search against sort-and-batch, in one run.

Translates Multi30k test_2016_flickr (repeated --copies times) with `Translator.translate_ids`
(sort by length, batch by the token budget, each batch searched to its end: what `nmt-translate`
runs) and with `nmt.scheduler.Scheduler` refilled: sentences in input order (or longest first,
`--orders`) join the running search in groups whenever a group fits the budget beside the running
ones, so the batch never runs down to a tail. Each row is the fastest of --repeat runs after a
warm-up; the answers of every refill run are compared with those of sort-and-batch (batch
invariance): the table says how many sentences differ, and the exit status is 1 if any did.

`--clients N` adds a second table: the service's two schedulings at N closed-loop one-sentence
clients without the service around them (no HTTP, no event loop), so what is left is what
each costs the search. Each client sends its next sentence as soon as its last is answered.
Request level: the waiting sentences form a batch searched to its end (all N come back
together, so every batch holds N). Step level: the waiting sentences join the running search
every K steps (`--admit-every`; at once when it is idle), each encoded on joining. The
service's admission interval (`service/batcher.py`) comes to about K = 3-6 at 32 clients.

    python benchmarks/refill.py --model models/de-en --copies 10 --repeat 3
    python benchmarks/refill.py --orders --clients 32 --admit-every 1 3 5 10 20
    python benchmarks/refill.py --device cuda --copies 20 --batch-tokens 262144 --groups 256 1024
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from nmt.batching import longest_first
from nmt.scheduler import Scheduler
from nmt.search import Hypothesis, SearchOptions
from nmt.translator import Translator

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SRC = ROOT.parent / "shared" / "data" / "multi30k" / "test_2016_flickr.de"


def refill(translator: Translator, sources: Sequence[Sequence[int]], group: int, budget: int, by_length: bool) -> list[
    list[Hypothesis]
]:  # fmt: skip
    """n-best of every source, admitted `group` at a time into one running search whenever they fit;
    in input order, or (`by_length`) longest first, as sort-and-batch takes them."""
    scheduler: Scheduler[int] = Scheduler(translator, translator.options, budget)
    found: dict[int, list[Hypothesis]] = {}
    order = longest_first([len(s) for s in sources]) if by_length else list(range(len(sources)))
    waiting = 0
    while waiting < len(sources) or scheduler.running:
        batch = order[waiting : waiting + group]
        while len(batch) > 1 and not scheduler.running and not scheduler.room(len(batch), longest(sources, batch)):
            batch.pop()  # a group over the whole budget: what fits (else it would wait for ever)
        if batch and scheduler.room(len(batch), longest(sources, batch)):
            found.update(scheduler.admit([(i, sources[i]) for i in batch]))
            waiting += len(batch)
        found.update(scheduler.step())
    return [found[i] for i in range(len(sources))]


def closed_loop_request(translator: Translator, sources: Sequence[Sequence[int]], clients: int, budget: int) -> list[
    list[Hypothesis]
]:  # fmt: skip
    """n-best of every source, sent by `clients` closed-loop clients under request-level scheduling: each
    batch is every client's next sentence, searched to its end."""
    found: list[list[Hypothesis]] = []
    for start in range(0, len(sources), clients):
        found += translator.translate_ids(sources[start : start + clients], batch_tokens=budget)
    return found


def closed_loop_step(translator: Translator, sources: Sequence[Sequence[int]], clients: int, budget: int,
                     every: int) -> list[list[Hypothesis]]:  # fmt: skip
    """n-best of every source, sent by `clients` closed-loop clients under step-level scheduling: the waiting
    sentences join the running search every `every` steps, or at once when it is idle."""
    scheduler: Scheduler[int] = Scheduler(translator, translator.options, budget)
    found: dict[int, list[Hypothesis]] = {}
    waiting = list(range(min(clients, len(sources))))
    sent, steps = len(waiting), 0
    while waiting or scheduler.running:
        answered = []
        if waiting and (steps % every == 0 or not scheduler.running):
            joining = 1
            while joining < len(waiting) and scheduler.room(joining + 1, longest(sources, waiting[: joining + 1])):
                joining += 1
            answered += scheduler.admit([(i, sources[i]) for i in waiting[:joining]])
            waiting = waiting[joining:]
        answered += scheduler.step()
        steps += 1
        for i, hyps in answered:  # each answer frees its client, which sends the next sentence
            found[i] = hyps
            if sent < len(sources):
                waiting.append(sent)
                sent += 1
    return [found[i] for i in range(len(sources))]


def longest(sources: Sequence[Sequence[int]], batch: list[int]) -> int:
    """The longest of sources `batch`, in subwords."""
    return max(len(sources[i]) for i in batch)


def answers(nbest: list[list[Hypothesis]]) -> list[list[tuple[list[int], float]]]:
    """Tokens and score of every hypothesis: what must not depend on how sentences were batched."""
    return [[(h.tokens, h.score) for h in hyps] for hyps in nbest]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "de-en")
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC)
    parser.add_argument("--copies", type=int, default=1, help="the test set repeated this often")
    parser.add_argument("--groups", type=int, nargs="+", default=[8, 32, 64], help="sentences admitted at once")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-tokens", type=int, help="default: the device's (nmt.batching.BATCH_TOKENS)")
    parser.add_argument(
        "--orders",
        nargs="*",
        choices=["input", "length"],
        default=["input", "length"],
        help="the order sources join in: as given, or longest first (none: no refill rows)",
    )
    parser.add_argument("--clients", type=int, help="also compare the two schedulings at this many closed-loop clients")
    parser.add_argument("--admit-every", type=int, nargs="+", default=[1, 3, 5, 10],
                        help="step level: waiting sentences join every this many steps")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    translator = Translator.from_dir(args.model, device=args.device, options=SearchOptions(beam_size=5))
    texts = args.src.read_text(encoding="utf-8").splitlines() * args.copies
    sources = translator.encode(texts)
    budget = args.batch_tokens or translator.batch_tokens
    sort_and_batch = functools.partial(translator.translate_ids, sources, batch_tokens=budget)
    translator.translate_ids(sources[:64], batch_tokens=budget)  # warm-up
    expected = answers(sort_and_batch())
    rows: list[tuple[str, float, int]] = []

    def fastest(run: Callable[[], list[list[Hypothesis]]]) -> tuple[float, int]:
        """Sentences/s of the fastest run, and the most sentences any run answered unlike sort-and-batch."""
        best, differ = float("inf"), 0
        for _ in range(args.repeat):
            started = time.perf_counter()
            found = answers(run())
            best = min(best, time.perf_counter() - started)
            differ = max(differ, sum(a != b for a, b in zip(found, expected, strict=True)))
        return len(sources) / best, differ

    rows.append(("sort-and-batch (nmt-translate)", *fastest(sort_and_batch)))
    for order in args.orders:
        for group in args.groups:
            run = functools.partial(refill, translator, sources, group, budget, order == "length")
            rows.append((f"refill, {order} order, groups of {group}", *fastest(run)))
    where = torch.cuda.get_device_name() if translator.device.type == "cuda" else f"{args.threads} threads"
    print(f"\n{len(sources)} sentences ({args.src.name} x {args.copies}), beam 5, {where}, "
          f"CPU {torch.backends.cpu.get_cpu_capability()}, precision {translator.precision}, "
          f"budget {budget} tokens, fastest of {args.repeat}\n")  # fmt: skip
    print("| schedule | sentences/s | / sort-and-batch | answers unlike sort-and-batch |\n|:--|--:|--:|--:|")
    for name, speed, differ in rows:
        print(f"| {name} | {speed:.1f} | {speed / rows[0][1]:.2f}x | {differ} |")
    loop: list[tuple[str, float, int]] = []
    if args.clients:
        run = functools.partial(closed_loop_request, translator, sources, args.clients, budget)
        loop.append(("request level (batches searched to their end)", *fastest(run)))
        for every in args.admit_every:
            run = functools.partial(closed_loop_step, translator, sources, args.clients, budget, every)
            loop.append((f"step level, joining every {every} steps", *fastest(run)))
        print(f"\n{args.clients} closed-loop clients of one sentence each, no service around the search\n")
        print("| scheduling | sentences/s | / request level | answers unlike sort-and-batch |\n|:--|--:|--:|--:|")
        for name, speed, differ in loop:
            print(f"| {name} | {speed:.1f} | {speed / loop[0][1]:.2f}x | {differ} |")
    return 1 if any(differ for *_, differ in rows + loop) else 0


if __name__ == "__main__":
    sys.exit(main())
