#!/usr/bin/env python3
"""Writes the search benchmark's fixed data set: products.json (240 products in 8 categories)
and queries.json (40 queries with their expected hits: exact names, typos, prefixes, SKUs,
facets). Deterministic (seeded); rerun only to change the data set, then commit both files.

    python3 services/catalog/bench/generate.py
"""

import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(20261207)

CATEGORIES = {
    "audio": ["Headphones", "Earbuds", "Speaker", "Soundbar", "Turntable", "Microphone"],
    "computing": ["Laptop", "Keyboard", "Mouse", "Monitor", "Webcam", "Router"],
    "kitchen": ["Kettle", "Toaster", "Blender", "Espresso Machine", "Skillet", "Knife Set"],
    "outdoor": ["Tent", "Backpack", "Sleeping Bag", "Headlamp", "Hiking Boots", "Water Filter"],
    "home": ["Desk Lamp", "Armchair", "Bookshelf", "Rug", "Wall Clock", "Curtains"],
    "fitness": ["Yoga Mat", "Dumbbell Set", "Treadmill", "Jump Rope", "Kettlebell", "Rowing Machine"],
    "garden": ["Lawn Mower", "Hedge Trimmer", "Watering Can", "Garden Hose", "Pruning Shears", "Planter"],
    "toys": ["Puzzle", "Building Blocks", "Board Game", "Kite", "Teddy Bear", "Train Set"],
}
BRANDS = ["Acme", "Borealis", "Cobalt", "Dynamo", "Ember", "Fjord", "Granite", "Helix",
          "Ionic", "Juniper", "Kestrel", "Lumen", "Meridian", "Nimbus", "Orchid"]
MODELS = ["Aurora", "Breeze", "Comet", "Delta", "Echo", "Falcon", "Glacier", "Harbor", "Indigo",
          "Jaguar", "Koala", "Lagoon", "Mirage", "Nova", "Onyx", "Phoenix", "Quartz", "Raven",
          "Sierra", "Tundra", "Umber", "Vortex", "Willow", "Xenon", "Yukon", "Zephyr", "Atlas",
          "Bastion", "Cinder", "Dune"]
ADJECTIVES = ["compact", "durable", "lightweight", "premium", "quiet", "portable", "classic",
              "modern", "rechargeable", "foldable", "wireless", "stainless"]
USES = ["for everyday use", "for small apartments", "for travel", "for professionals",
        "for beginners", "for the whole family", "with a two-year warranty", "with fast shipping"]
PRICES = [799, 1299, 1999, 2499, 3499, 4999, 6999, 8999, 12999, 19999, 27999, 49999]


def products():
    items = []
    n = 0
    for slug, kinds in CATEGORIES.items():
        for index in range(30):
            kind = kinds[index % len(kinds)]
            brand = BRANDS[(index * 7 + len(slug)) % len(BRANDS)]
            model = MODELS[index % len(MODELS)]
            n += 1
            sku = f"{slug[:3].upper()}-{n:04d}"
            adjectives = rng.sample(ADJECTIVES, 2)
            description = (f"A {adjectives[0]}, {adjectives[1]} {kind.lower()} by {brand} "
                           f"{rng.choice(USES)}.")
            items.append({
                "sku": sku,
                "name": f"{brand} {model} {kind}",
                "description": description,
                "category": slug,
                "priceCents": rng.choice(PRICES),
                "stockAvailable": rng.choice([0, 3, 10, 25]),
            })
    return items


def typo(word):
    """One edit: a dropped, doubled or swapped letter, not the first (users get that right)."""
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["drop", "double", "swap"])
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def queries(items):
    out = []
    picks = rng.sample(items, 34)
    for p in picks[:8]:
        out.append({"kind": "name", "q": p["name"].lower(), "expected": [p["sku"]]})
    for p in picks[8:20]:
        brand, model, *kind = p["name"].split(" ")
        words = [typo(model)] + [typo(w) if len(w) > 4 else w for w in kind]
        out.append({"kind": "typo", "q": " ".join(words).lower(), "expected": [p["sku"]]})
    seen = set()
    for p in picks[20:]:
        brand, model, *_ = p["name"].split(" ")
        q = f"{brand} {model[:3]}".lower()
        if q in seen or len(seen) == 8:
            continue
        seen.add(q)
        # Every product of the brand whose model starts so is a right answer.
        expected = [o["sku"] for o in items if o["name"].lower().startswith(f"{brand} ".lower())
                    and o["name"].split(" ")[1].lower().startswith(model[:3].lower())]
        out.append({"kind": "prefix", "q": q, "expected": expected})
    for p in picks[28:34]:
        out.append({"kind": "sku", "q": p["sku"].lower(), "expected": [p["sku"]]})
    # Facets: a word, a category and a price range; every matching product is a right answer.
    for slug, word, low, high, in_stock in [("audio", "wireless", 1000, 30000, False),
                                            ("computing", "compact", 2000, 20000, False),
                                            ("kitchen", "stainless", 0, 5000, False),
                                            ("outdoor", "lightweight", 1000, 30000, True),
                                            ("fitness", "durable", 0, 15000, True),
                                            ("toys", "classic", 0, 50000, True)]:
        expected = [p["sku"] for p in items if p["category"] == slug
                    and word in p["description"].replace(",", "").split(" ")
                    and low <= p["priceCents"] <= high
                    and (not in_stock or p["stockAvailable"] > 0)]
        if expected:
            query = {"kind": "facet", "q": word, "category": slug, "minPriceCents": low,
                     "maxPriceCents": high, "expected": expected}
            if in_stock:
                query["inStock"] = True
            out.append(query)
    return out


def main():
    items = products()
    qs = queries(items)
    with open(os.path.join(HERE, "products.json"), "w") as f:
        json.dump(items, f, indent=1)
        f.write("\n")
    with open(os.path.join(HERE, "queries.json"), "w") as f:
        json.dump(qs, f, indent=1)
        f.write("\n")
    print(f"{len(items)} products, {len(qs)} queries")


if __name__ == "__main__":
    main()
