"""Does a turn point back at what came before it ("What is its capital?", "Tell me more")?

A target an earlier turn touched stays the subject of a later one that refers back to it, whatever
the model's own answer says (a sampled answer may resolve "his" where the greedy one did not). Only
a turn that stands on its own can leave such a target in the background. Erring toward "points
back" costs nothing but that: the conversation keeps the target's whole treatment.
"""

from __future__ import annotations

import re

_WORDS = frozenset("""
it its itself he him his himself she her hers herself they them their theirs themselves
this that these those there then same former latter above aforementioned previous previously
earlier mentioned said more else again also too another other others ones
il elle ils elles lui leur leurs son sa ses ce cette ces cela ça là y en
él ella ellos ellas su sus lo la le les eso esa ese esto esta este allí ahí
er sie es ihm ihn ihr ihre sein seine seinen seiner dort dies diese dieser dieses das dem den
lei suo sua suoi sue quello quella questo questa lì
ele ela eles elas dele dela seu sua isso esse essa aquele aquela
""".split())
# Scripts without spaces between words: the pointing words themselves, as substrings.
_UNSPACED = ("它", "他", "她", "其", "那", "这", "這", "該", "该", "それ", "あれ", "これ", "その", "この", "あの", "彼", "そこ")
_WORD = re.compile(r"\w+", re.UNICODE)


def points_back(text: str) -> bool:
    """Whether the text holds a word that may refer to an earlier turn (pronouns, demonstratives,
    "more", "again", "the same", in the languages the detector reads)."""
    lowered = text.lower()
    return any(w in _WORDS for w in _WORD.findall(lowered)) or any(w in lowered for w in _UNSPACED)
