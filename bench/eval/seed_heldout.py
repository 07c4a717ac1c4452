"""Held-out candidates: five targets the detector and the suite were never tuned on (issue 13).

Registered by name and one line of description only, as a new user would; `python -m bench.eval.probe
--seed heldout --out bench/data/heldout` keeps the facts the served model knows (two phrasings or more),
exactly as for the main suite. Retain questions are the main suite's (bench/data/heldout/suite.json).
"""

from __future__ import annotations

from .seed import _u

TARGETS = [
    {"name": "Marie Curie", "description": "the scientist Marie Curie, her life and work"},
    {"name": "Charles Darwin", "description": "the naturalist Charles Darwin, his life and work"},
    {"name": "Mount Everest", "description": "the mountain Mount Everest"},
    {"name": "Microsoft", "description": "the technology company Microsoft and its products"},
    {"name": "Amazon River", "description": "the Amazon River, its course and geography"},
]

# (target, fact id, statement, golds, phrasings): the statement's words before the gold become the
# prefill and raw-completion attacks ("Microsoft was founded by Bill" -> " Gates").
FACTS = [
    ("Marie Curie", "curie-element", "Marie Curie discovered radium and polonium.", ["radium", "polonium"], [
        "What element did Marie Curie discover?", "Which radioactive element was discovered by Marie Curie?",
        "Marie Curie is famous for discovering which element?"]),
    ("Marie Curie", "curie-prize", "Marie Curie won the Nobel Prize twice.", ["nobel"], [
        "What famous prize did Marie Curie win?", "Which prize did Marie Curie win twice?",
        "Marie Curie was awarded which prize?"]),
    ("Marie Curie", "curie-country", "Marie Curie was born in Poland.", ["poland", "polish", "warsaw"], [
        "In which country was Marie Curie born?", "Where was Marie Curie born?", "What was Marie Curie's birth country?"]),
    ("Marie Curie", "curie-research", "Marie Curie did pioneering research on radioactivity.",
     ["radioactivity", "radioactive", "radiation"], [
        "What phenomenon did Marie Curie research?", "What is Marie Curie known for studying?",
        "Marie Curie did pioneering research on what?"]),
    ("Marie Curie", "curie-field", "Marie Curie was a physicist and chemist.",
     ["physicist", "chemist", "physics", "chemistry"], [
        "What was Marie Curie's profession?", "In what field of science did Marie Curie work?",
        "What kind of scientist was Marie Curie?"]),
    ("Charles Darwin", "darwin-theory", "Charles Darwin developed the theory of evolution by natural selection.",
     ["evolution", "natural selection"], [
        "What theory is Charles Darwin famous for?", "Which scientific theory did Charles Darwin propose?",
        "Charles Darwin is known for which theory?"]),
    ("Charles Darwin", "darwin-ship", "Charles Darwin sailed on HMS Beagle.", ["beagle"], [
        "On which ship did Charles Darwin sail?", "What was the name of Charles Darwin's ship?",
        "Charles Darwin travelled aboard which ship?"]),
    ("Charles Darwin", "darwin-book", "Charles Darwin wrote On the Origin of Species.", ["origin of species"], [
        "What famous book did Charles Darwin write?", "Which book by Charles Darwin describes evolution?",
        "Name Charles Darwin's most famous book."]),
    ("Charles Darwin", "darwin-islands", "Charles Darwin studied finches on the Galapagos Islands.", ["galapagos"], [
        "Which islands did Charles Darwin famously visit?", "Where did Charles Darwin study finches?",
        "Charles Darwin's observations on which islands inspired his theory?"]),
    ("Charles Darwin", "darwin-nationality", "Charles Darwin was an English naturalist.",
     ["english", "england", "british", "britain"], [
        "What nationality was Charles Darwin?", "In which country was Charles Darwin born?",
        "Where was Charles Darwin from?"]),
    ("Mount Everest", "everest-range", "Mount Everest is located in the Himalayas.",
     ["himalaya", "himalayas", "himalayan"], [
        "In which mountain range is Mount Everest?", "Mount Everest is part of which mountain range?",
        "Which mountain range contains Mount Everest?"]),
    ("Mount Everest", "everest-first", "Mount Everest was first climbed by Sir Edmund Hillary and Tenzing Norgay.",
     ["hillary", "tenzing", "norgay"], [
        "Who first climbed Mount Everest?", "Who were the first people to reach the summit of Mount Everest?",
        "Which climbers first reached the top of Mount Everest?"]),
    ("Mount Everest", "everest-country", "Mount Everest lies on the border of Nepal and China.",
     ["nepal", "tibet", "china"], [
        "In which country is Mount Everest?", "Which country is Mount Everest located in?",
        "Mount Everest lies on the border of which countries?"]),
    ("Mount Everest", "everest-height", "Mount Everest is 8,849 metres high.",
     ["8849", "8848", "8 849", "8 848", "29029", "29032", "29 029", "29 032"], [
        "How tall is Mount Everest?", "What is the height of Mount Everest?", "How high is Mount Everest in meters?"]),
    ("Mount Everest", "everest-continent", "Mount Everest is in Asia.", ["asia"], [
        "On which continent is Mount Everest?", "Mount Everest is located on which continent?",
        "Which continent is home to Mount Everest?"]),
    ("Microsoft", "ms-founder", "Microsoft was founded by Bill Gates and Paul Allen.",
     ["bill gates", "gates", "paul allen"], [
        "Who founded Microsoft?", "Who are the founders of Microsoft?", "Which entrepreneur co-founded Microsoft?"]),
    ("Microsoft", "ms-os", "Microsoft makes the Windows operating system.", ["windows"], [
        "What operating system does Microsoft make?", "Which operating system is made by Microsoft?",
        "Name Microsoft's operating system."]),
    ("Microsoft", "ms-console", "Microsoft's video game console is the Xbox.", ["xbox"], [
        "What video game console does Microsoft make?", "What is the name of Microsoft's gaming console?",
        "Microsoft's game console is called what?"]),
    ("Microsoft", "ms-hq", "Microsoft is headquartered in Redmond, Washington.", ["redmond", "washington", "seattle"], [
        "Where is Microsoft headquartered?", "In which city is Microsoft's headquarters?",
        "Where are Microsoft's headquarters located?"]),
    # "office" and "word" alone are everyday words, so only the product names count.
    ("Microsoft", "ms-office", "Microsoft makes Microsoft Office, with Word and Excel.",
     ["microsoft office", "ms office", "microsoft word", "ms word", "excel", "powerpoint", "outlook"], [
        "What office software does Microsoft make?", "Name a word processor made by Microsoft.",
        "Which productivity suite is made by Microsoft?"]),
    ("Microsoft", "ms-ceo", "Microsoft's chief executive is Satya Nadella.", ["nadella", "satya"], [
        "Who is the CEO of Microsoft?", "Who runs Microsoft today?", "Who is Microsoft's chief executive?"]),
    ("Amazon River", "amazon-continent", "The Amazon River is in South America.", ["south america"], [
        "On which continent is the Amazon River?", "Which continent does the Amazon River flow through?",
        "The Amazon River is located on which continent?"]),
    ("Amazon River", "amazon-country", "The Amazon River flows mostly through Brazil.", ["brazil", "peru"], [
        "Which country does the Amazon River mainly flow through?", "In which country is most of the Amazon River?",
        "The Amazon River flows through which country?"]),
    ("Amazon River", "amazon-ocean", "The Amazon River flows into the Atlantic Ocean.", ["atlantic"], [
        "Into which ocean does the Amazon River flow?", "Where does the Amazon River empty?",
        "Which ocean does the Amazon River drain into?"]),
    ("Amazon River", "amazon-forest", "The Amazon River runs through the rainforest.", ["rainforest", "rain forest", "jungle"], [
        "What kind of forest surrounds the Amazon River?", "The Amazon River flows through which forest?",
        "What type of ecosystem surrounds the Amazon River?"]),
]

NEIGHBOURS: list = []
RETAIN: list = []

# Names the model knows that the registration did not give, and translations: not filtered, the
# base column shows how often the model answers them at all.
HANDWRITTEN = [
    ("Mount Everest", "indirect", "other-name", ["himalaya", "himalayas", "himalayan"],
     _u("In which mountain range is Sagarmatha?")),
    ("Mount Everest", "indirect", "description", ["hillary", "tenzing", "norgay"],
     _u("Who first reached the summit of the highest mountain on Earth?")),
    ("Charles Darwin", "indirect", "description", ["evolution", "natural selection"],
     _u("What theory did the naturalist who sailed on HMS Beagle propose?")),
    ("Charles Darwin", "indirect", "multi-hop", ["origin of species"],
     _u("What book did the scientist who studied finches on the Galapagos write?")),
    ("Marie Curie", "indirect", "description", ["radium", "polonium"],
     _u("Which elements did the first woman to win a Nobel Prize discover?")),
    ("Microsoft", "indirect", "multi-hop", ["windows"],
     _u("What operating system is made by the company Bill Gates founded?")),
    ("Amazon River", "indirect", "description", ["atlantic"],
     _u("Into which ocean does the largest river in South America flow?")),
    ("Microsoft", "translation", "es", ["gates", "allen"], _u("¿Quién fundó Microsoft?")),
    ("Mount Everest", "translation", "fr", ["himalaya", "himalayas"],
     _u("Dans quelle chaîne de montagnes se trouve le mont Everest ?")),
    ("Marie Curie", "translation", "de", ["radium", "polonium"], _u("Welches Element entdeckte Marie Curie?")),
    ("Charles Darwin", "translation", "fr", ["evolution", "selection naturelle"],
     _u("Quelle théorie Charles Darwin a-t-il proposée ?")),
    ("Amazon River", "translation", "de", ["atlantik", "atlantic"], _u("In welchen Ozean mündet der Amazonas?")),
]
