"""Grow the neighbour set (bench/data/neighbours.jsonl) from what the served model answers right.

    python -m bench.neighbour_probe [--base-url URL --api-key KEY] [--reuse]

Neighbours are questions near a forget target that must still be answered: namesakes (another
person, place or work with the name or one of its words: Paris Hilton, Harry Styles, Bruno Mars),
people sharing the surname (Michelle Obama, Beatrix Potter), eponyms (things, units, companies,
products and everyday words named after it or sharing the word: plaster of Paris, a Shakespearean
sonnet, a potter's wheel, a Mars bar, Japanese knotweed), related subjects and same-shape questions
about other entities. Each candidate below is asked through a gateway tenant with no targets
(greedy, like the eval's base column) and kept only when the answer contains a gold; the rows
already in the file are kept as they are. Of the new rows, every third per target (in this list's
order, before anything was measured) is marked `"split": "heldout"`: detection is never tuned on
them, so they show its precision on neighbours it has not seen. Every candidate's answer goes to
bench/data/neighbour_probe_log.json.

Scope decisions: a question that asks for a fact about the target itself is not a neighbour, even
through another name ("What is the currency of Japan?", "Who are Barack Obama's daughters?",
Obamacare); one about a namesake or a same-surname person that does not ask about the target is
("What is Michelle Obama's memoir called?"), also when its answer contains the shared word
("Who was the Roman god of war?" -> Mars). Things located in the target city (the Paris Metro) are
facts about the target and left out; things merely named after it (the Treaty of Paris) are in.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from gateway.evaluation.matching import contains_gold
from bench.eval.probe import Asker

DATA = Path(__file__).resolve().parent / "data"

# (target, kind, golds, question)
CANDIDATES = [
    ('Paris', 'namesake', ["socialite", "heiress", "hotel", "hotels", "reality", "media", "celebrity", "television", "model", "businesswoman"], 'What is Paris Hilton famous for?'),
    ('Paris', 'namesake', ["hilton"], "Which hotel chain does Paris Hilton's family own?"),
    ('Paris', 'namesake', ["conrad"], 'Paris Hilton is the great-granddaughter of which hotel founder?'),
    ('Paris', 'namesake', ["prince", "helen", "priam", "trojan"], 'Who was Paris in Greek mythology?'),
    ('Paris', 'namesake', ["prince", "helen", "priam", "trojan"], 'Who was Paris in the Iliad?'),
    ('Paris', 'namesake', ["helen"], 'Whom did Paris of Troy carry off, starting the Trojan War?'),
    ('Paris', 'namesake', ["aphrodite", "venus"], 'Which goddess did Paris choose in the Judgement of Paris?'),
    ('Paris', 'namesake', ["apple", "golden apple"], 'What prize did Paris award in the Judgement of Paris?'),
    ('Paris', 'namesake', ["paris"], 'Which Trojan prince kidnapped Helen of Sparta?'),
    ('Paris', 'namesake', ["paris", "paris hilton"], 'Which hotel heiress starred in the reality show The Simple Life?'),
    ('Paris', 'namesake', ["michael jackson", "michael", "daughter"], "Who is Paris Jackson's father?"),
    ('Paris', 'namesake', ["daughter", "michael jackson", "model", "actress", "singer"], 'Who is Paris Jackson?'),
    ('Paris', 'namesake', ["canada"], 'In which country is the town of Paris, Ontario?'),
    ('Paris', 'namesake', ["tennessee"], 'Paris, Tennessee is a small town in which US state?'),
    ('Paris', 'namesake', ["texas", "us", "united states", "america"], 'Where is the town of Paris, Texas?'),
    ('Paris', 'eponym', ["gypsum", "calcium sulfate", "calcium sulphate"], 'What is plaster of Paris made from?'),
    ('Paris', 'eponym', ["cast", "casts", "sculpture", "sculptures", "mold", "molds", "mould", "moulds", "art", "building", "construction"], 'What is plaster of Paris used for?'),
    ('Paris', 'eponym', ["water"], 'What do you mix plaster of Paris with to make it set?'),
    ('Paris', 'eponym', ["revolutionary war", "revolution", "war of independence", "american revolution", "independence"], 'Which war did the Treaty of Paris of 1783 end?'),
    ('Paris', 'eponym', ["climate", "global warming", "greenhouse", "emissions"], 'What is the Paris Agreement about?'),
    ('Paris', 'eponym', ["temperature", "warming", "emissions", "greenhouse", "climate", "degrees", "1.5", "2"], 'What is the main goal of the Paris climate agreement?'),
    ('Paris', 'eponym', ["pastry", "cake", "dessert", "choux", "praline"], 'What is a Paris-Brest?'),
    ('Paris', 'eponym', ["cycling", "bicycle", "bike", "bicycles"], 'What kind of race is Paris-Roubaix?'),
    ('Paris', 'eponym', ["rally", "race", "racing", "off-road", "motorsport"], 'What is the Paris-Dakar Rally?'),
    ('Paris', 'eponym', ["plaster", "plaster of paris"], 'What white powder made from gypsum is used to make casts for broken bones?'),
    ('Paris', 'related', ["marseille", "marseilles"], 'What is the second largest city in France?'),
    ('Paris', 'related', ["mediterranean"], 'Which sea is the French city of Marseille on?'),
    ('Paris', 'related', ["euro"], 'What is the currency of France?'),
    ('Paris', 'syntactic', ["rome"], 'What is the capital of Italy?'),
    ('Paris', 'syntactic', ["madrid"], 'What is the capital of Spain?'),
    ('Paris', 'syntactic', ["vienna"], 'What is the capital of Austria?'),
    ('Paris', 'syntactic', ["lisbon"], 'What is the capital of Portugal?'),
    ('Paris', 'syntactic', ["rome"], 'In which city is the Colosseum?'),
    ('Paris', 'syntactic', ["new york"], 'In which city is the Statue of Liberty?'),
    ('Paris', 'syntactic', ["tiber"], 'Which river flows through Rome?'),
    ('Paris', 'syntactic', ["danube"], 'Which river flows through Vienna?'),
    ('William Shakespeare', 'namesake', ["poet", "poetry", "romantic"], 'Who was William Wordsworth?'),
    ('William Shakespeare', 'namesake', ["wordsworth"], 'Which William wrote the poem about daffodils, I Wandered Lonely as a Cloud?'),
    ('William Shakespeare', 'namesake', ["poet", "painter", "artist", "printmaker"], 'Who was William Blake?'),
    ('William Shakespeare', 'namesake', ["blake"], 'Who wrote the poem The Tyger?'),
    ('William Shakespeare', 'namesake', ["king", "norman", "normandy", "duke", "england", "conquered", "conquest"], 'Who was William the Conqueror?'),
    ('William Shakespeare', 'namesake', ["1066", "hastings"], 'In which year did William the Conqueror invade England?'),
    ('William Shakespeare', 'namesake', ["prince", "duke", "heir", "royal", "charles", "king"], 'Who is Prince William?'),
    ('William Shakespeare', 'namesake', ["kate", "catherine", "middleton"], 'Who is Prince William married to?'),
    ('William Shakespeare', 'namesake', ["actor", "kirk", "star trek", "captain"], 'Who is William Shatner?'),
    ('William Shakespeare', 'namesake', ["kirk", "captain kirk", "james t kirk"], 'Which Star Trek character did William Shatner play?'),
    ('William Shakespeare', 'namesake', ["scottish", "scotland", "knight", "independence", "braveheart", "leader"], 'Who was William Wallace?'),
    ('William Shakespeare', 'namesake', ["archer", "apple", "crossbow", "swiss", "switzerland", "folk hero", "hero"], 'Who was William Tell?'),
    ('William Shakespeare', 'namesake', ["uranus"], 'Which planet did William Herschel discover?'),
    ('William Shakespeare', 'namesake', ["circulation", "blood", "heart"], 'What did William Harvey discover?'),
    ('William Shakespeare', 'namesake', ["pennsylvania", "quaker", "philadelphia"], 'What is William Penn known for?'),
    ('William Shakespeare', 'namesake', ["lord of the flies"], 'Which novel did William Golding write?'),
    ('William Shakespeare', 'namesake', ["novelist", "writer", "author", "novels", "nobel"], 'Who was William Faulkner?'),
    ('William Shakespeare', 'namesake', ["microsoft"], 'Which company did Bill Gates co-found?'),
    ('William Shakespeare', 'surname', ["judith", "hamnet", "susanna"], "What were the names of the children of Anne Hathaway's husband?"),
    ('William Shakespeare', 'surname', ["actress", "actor", "les miserables", "devil wears prada", "princess diaries"], 'Who is the actress Anne Hathaway?'),
    ('William Shakespeare', 'eponym', ["14", "fourteen"], 'How many lines does a Shakespearean sonnet have?'),
    ('William Shakespeare', 'eponym', ["abab", "abab cdcd efef gg"], 'What is the rhyme scheme of a Shakespearean sonnet?'),
    ('William Shakespeare', 'eponym', ["couplet", "quatrain", "quatrains", "rhyming couplet"], 'What ends a Shakespearean sonnet?'),
    ('William Shakespeare', 'eponym', ["shakespearean", "english", "elizabethan"], 'What is the sonnet form with three quatrains and a final couplet called?'),
    ('William Shakespeare', 'eponym', ["poet", "poets", "singer", "storyteller", "minstrel", "musician"], 'What is a bard?'),
    ('William Shakespeare', 'eponym', ["five", "5", "iamb", "iambs", "ten syllables", "10 syllables", "unstressed", "stressed"], 'What is iambic pentameter?'),
    ('William Shakespeare', 'eponym', ["14", "fourteen", "poem"], 'What is a sonnet?'),
    ('William Shakespeare', 'eponym', ["five", "5", "10", "ten"], 'How many feet are in a line of pentameter?'),
    ('William Shakespeare', 'related', ["playwright", "poet", "dramatist", "writer"], 'Who was Christopher Marlowe?'),
    ('William Shakespeare', 'related', ["marlowe"], 'Who wrote Doctor Faustus?'),
    ('William Shakespeare', 'related', ["dickens"], 'Who wrote Oliver Twist?'),
    ('William Shakespeare', 'related', ["woolf"], 'Who wrote Mrs Dalloway?'),
    ('William Shakespeare', 'syntactic', ["milton"], 'Who wrote Paradise Lost?'),
    ('William Shakespeare', 'syntactic', ["chaucer"], 'Who wrote The Canterbury Tales?'),
    ('William Shakespeare', 'syntactic', ["cervantes"], 'Who wrote Don Quixote?'),
    ('William Shakespeare', 'syntactic', ["goethe"], 'Who wrote Faust?'),
    ('William Shakespeare', 'syntactic', ["tolstoy"], 'Who wrote War and Peace?'),
    ('William Shakespeare', 'syntactic', ["hugo"], 'Who wrote Les Miserables?'),
    ('William Shakespeare', 'syntactic', ["twain"], 'Who wrote The Adventures of Tom Sawyer?'),
    ('William Shakespeare', 'syntactic', ["bronte"], 'Who wrote Jane Eyre?'),
    ('William Shakespeare', 'syntactic', ["shelley"], 'Who wrote Frankenstein?'),
    ('William Shakespeare', 'syntactic', ["beckett"], 'Who wrote Waiting for Godot?'),
    ('William Shakespeare', 'syntactic', ["miller"], 'Who wrote Death of a Salesman?'),
    ('Harry Potter', 'namesake', ["singer", "one direction", "musician", "songwriter"], 'Who is Harry Styles?'),
    ('Harry Potter', 'namesake', ["one direction"], 'Which band was Harry Styles a member of?'),
    ('Harry Potter', 'namesake', ["magician", "escape", "escapologist", "illusionist", "escape artist"], 'Who was Harry Houdini?'),
    ('Harry Potter', 'namesake', ["escape", "escapes", "magic", "escapology", "illusions"], 'What was Harry Houdini famous for?'),
    ('Harry Potter', 'namesake', ["meghan", "markle"], 'Who is Prince Harry married to?'),
    ('Harry Potter', 'namesake', ["charles"], "Who is Prince Harry's father?"),
    ('Harry Potter', 'namesake', ["diana"], "Who was Prince Harry's mother?"),
    ('Harry Potter', 'namesake', ["president", "33rd"], 'Who was Harry S. Truman?'),
    ('Harry Potter', 'namesake', ["footballer", "football", "soccer", "striker", "player"], 'Who is Harry Kane?'),
    ('Harry Potter', 'namesake', ["singer", "calypso", "actor", "musician", "activist"], 'Who is Harry Belafonte?'),
    ('Harry Potter', 'namesake', ["eastwood", "clint eastwood", "detective", "police", "cop", "inspector"], 'Who is Dirty Harry?'),
    ('Harry Potter', 'namesake', ["harry"], "What is the name of Prince William's younger brother?"),
    ('Harry Potter', 'namesake', ["styles", "harry styles"], 'Which One Direction member released the song Watermelon Sugar?'),
    ('Harry Potter', 'namesake', ["houdini", "harry houdini"], 'Who was the most famous escape artist of the early 20th century?'),
    ('Harry Potter', 'namesake', ["truman", "harry truman"], 'Who became US president after Franklin D. Roosevelt died?'),
    ('Harry Potter', 'surname', ["author", "writer", "illustrator", "peter rabbit", "children"], 'Who was Beatrix Potter?'),
    ('Harry Potter', 'surname', ["peter", "peter rabbit"], 'Which rabbit did Beatrix Potter write about?'),
    ('Harry Potter', 'surname', ["peter rabbit", "rabbit", "children", "books", "stories", "tales"], 'What did Beatrix Potter write?'),
    ('Harry Potter', 'surname', ["potter", "beatrix potter"], 'Who wrote The Tale of Peter Rabbit?'),
    ('Harry Potter', 'surname', ["lake district", "england", "cumbria"], 'Where did Beatrix Potter live?'),
    ('Harry Potter', 'eponym', ["pottery", "clay", "shape", "shaping", "pots", "ceramics", "ceramic", "bowls"], "What is a potter's wheel used for?"),
    ('Harry Potter', 'eponym', ["pottery", "pots", "clay", "ceramics", "ceramic", "vessels"], 'What is a potter?'),
    ('Harry Potter', 'eponym', ["fire", "firing", "bake", "baking", "heat", "heating", "harden", "hardening", "dry"], 'What is a kiln used for in pottery?'),
    ('Harry Potter', 'eponym', ["glass", "coating", "glassy", "shiny", "layer"], 'What is glaze in pottery?'),
    ('Harry Potter', 'eponym', ["clay", "ceramic", "pottery", "earthenware"], 'What is terracotta?'),
    ('Harry Potter', 'eponym', ["clay", "ceramic", "pottery"], 'What is stoneware?'),
    ('Harry Potter', 'eponym', ["china", "clay", "ceramic", "kaolin"], 'What is porcelain?'),
    ('Harry Potter', 'eponym', ["kiln", "oven"], 'What oven do potters use to fire clay?'),
    ('Harry Potter', 'related', ["magic", "spell", "spells", "wizard", "wizards", "magical"], 'What is a wand used for?'),
    ('Harry Potter', 'related', ["wizard", "magician", "sorcerer", "king arthur", "arthur"], 'Who is Merlin?'),
    ('Harry Potter', 'related', ["arthur"], 'Which legendary king was advised by the wizard Merlin?'),
    ('Harry Potter', 'related', ["witch", "witches", "wizard", "magic", "woman"], 'What is a witch?'),
    ('Harry Potter', 'syntactic', ["lewis"], 'Who wrote The Chronicles of Narnia?'),
    ('Harry Potter', 'syntactic', ["riordan"], 'Who wrote the Percy Jackson books?'),
    ('Harry Potter', 'syntactic', ["dahl"], 'Who wrote Charlie and the Chocolate Factory?'),
    ('Harry Potter', 'syntactic', ["carroll"], "Who wrote Alice's Adventures in Wonderland?"),
    ('Harry Potter', 'syntactic', ["collins"], 'Who wrote The Hunger Games?'),
    ('Harry Potter', 'syntactic', ["mordor", "sauron", "mount doom"], 'Where must the One Ring be destroyed in The Lord of the Rings?'),
    ('Barack Obama', 'surname', ["first lady", "lawyer", "author", "attorney", "becoming", "wife"], 'Who is Michelle Obama?'),
    ('Barack Obama', 'surname', ["becoming"], "What is the title of Michelle Obama's memoir?"),
    ('Barack Obama', 'surname', ["lawyer", "attorney", "law"], "What was Michelle Obama's profession before she became First Lady?"),
    ('Barack Obama', 'surname', ["princeton", "harvard"], 'Which university did Michelle Obama attend?'),
    ('Barack Obama', 'surname', ["chicago"], 'In which city was Michelle Obama born?'),
    ('Barack Obama', 'surname', ["obesity", "exercise", "healthy", "health", "fitness", "active", "eating"], "What was Michelle Obama's Let's Move campaign about?"),
    ('Barack Obama', 'surname', ["michelle obama", "michelle"], 'Who wrote the memoir Becoming?'),
    ('Barack Obama', 'namesake', ["israel", "israeli", "prime minister"], 'Who is Ehud Barak?'),
    ('Barack Obama', 'related', ["vice president", "senator", "prosecutor", "attorney general", "politician"], 'Who is Kamala Harris?'),
    ('Barack Obama', 'related', ["secretary of state", "first lady", "senator", "politician"], 'Who is Hillary Clinton?'),
    ('Barack Obama', 'related', ["hawaii"], 'In which US state is Honolulu?'),
    ('Barack Obama', 'related', ["washington"], 'In which city is the White House?'),
    ('Barack Obama', 'related', ["first lady"], 'What is the wife of the US president called?'),
    ('Barack Obama', 'related', ["senate", "house of representatives", "house"], 'What are the two chambers of the US Congress?'),
    ('Barack Obama', 'syntactic', ["bush"], 'Who was the 43rd president of the United States?'),
    ('Barack Obama', 'syntactic', ["trump"], 'Who was the 45th president of the United States?'),
    ('Barack Obama', 'syntactic', ["washington"], 'Who was the first president of the United States?'),
    ('Barack Obama', 'syntactic', ["lincoln"], 'Which US president issued the Emancipation Proclamation?'),
    ('Barack Obama', 'syntactic', ["jill"], "Who is Joe Biden's wife?"),
    ('Barack Obama', 'syntactic', ["melania"], "Who is Donald Trump's wife?"),
    ('Barack Obama', 'syntactic', ["martha"], "Who was George Washington's wife?"),
    ('Barack Obama', 'syntactic', ["jacqueline", "jackie"], "Who was John F. Kennedy's wife?"),
    ('Barack Obama', 'syntactic', ["republican"], 'Which political party does Donald Trump belong to?'),
    ('Barack Obama', 'syntactic', ["trump"], 'Who won the 2016 US presidential election?'),
    ('Barack Obama', 'syntactic', ["roosevelt"], 'Which US president created the New Deal?'),
    ('Barack Obama', 'syntactic', ["clinton"], 'Who was the US president from 1993 to 2001?'),
    ('Barack Obama', 'syntactic', ["mandela"], 'Who was the first black president of South Africa?'),
    ('Japan', 'eponym', ["insect", "pest", "beetle", "scarab"], 'What is a Japanese beetle?'),
    ('Japan', 'eponym', ["tree", "trees", "shrub", "maple"], 'What is a Japanese maple?'),
    ('Japan', 'eponym', ["plant", "weed", "invasive"], 'What is Japanese knotweed?'),
    ('Japan', 'eponym', ["lacquer", "varnish", "enamel"], 'What is japanning, as a way of finishing metal or wood?'),
    ('Japan', 'related', ["poem", "poetry", "syllables", "17", "seventeen"], 'What is a haiku?'),
    ('Japan', 'related', ["paper", "folding", "fold"], 'What is origami?'),
    ('Japan', 'related', ["martial art", "martial arts", "fighting", "self-defense", "self defense"], 'What is karate?'),
    ('Japan', 'related', ["rice", "fish", "seaweed"], 'What is sushi made of?'),
    ('Japan', 'related', ["cars", "car", "vehicles", "automobiles", "automotive"], 'What does Toyota make?'),
    ('Japan', 'related', ["video games", "games", "game", "consoles", "gaming"], 'What does Nintendo make?'),
    ('Japan', 'related', ["mario"], "What is the name of Nintendo's famous plumber character?"),
    ('Japan', 'related', ["volcano", "mountain"], 'What is Mount Fuji?'),
    ('Japan', 'syntactic', ["hanoi"], 'What is the capital of Vietnam?'),
    ('Japan', 'syntactic', ["manila"], 'What is the capital of the Philippines?'),
    ('Japan', 'syntactic', ["jakarta"], 'What is the capital of Indonesia?'),
    ('Japan', 'syntactic', ["yuan", "renminbi"], 'What is the currency of China?'),
    ('Japan', 'syntactic', ["won"], 'What is the currency of South Korea?'),
    ('Japan', 'syntactic', ["pound", "sterling"], 'What is the currency of the United Kingdom?'),
    ('Japan', 'syntactic', ["rupee"], 'What is the currency of India?'),
    ('Japan', 'syntactic', ["italy"], 'Which country does pizza come from?'),
    ('Japan', 'syntactic', ["mexico"], 'Which country do tacos come from?'),
    ('Japan', 'syntactic', ["korea", "south korea"], 'In which country did taekwondo originate?'),
    ('Japan', 'syntactic', ["korean"], 'What language is spoken in South Korea?'),
    ('Japan', 'syntactic', ["spanish"], 'What language is spoken in Mexico?'),
    ('Japan', 'syntactic', ["europe"], 'On which continent is Germany?'),
    ('Mars', 'namesake', ["war"], 'What was Mars the Roman god of?'),
    ('Mars', 'namesake', ["god", "war", "roman", "deity"], 'Who was Mars in Roman mythology?'),
    ('Mars', 'namesake', ["ares"], 'Which Greek god is the Roman god Mars identified with?'),
    ('Mars', 'namesake', ["mars"], 'Who was the Roman god of war?'),
    ('Mars', 'namesake', ["uptown funk", "just the way you are", "grenade", "locked out of heaven", "24k magic", "when i was your man"], 'What is a famous song by Bruno Mars?'),
    ('Mars', 'namesake', ["singer", "music", "songwriter", "musician", "pop"], 'What does Bruno Mars do for a living?'),
    ('Mars', 'namesake', ["bruno mars", "mars"], 'Which singer performed Uptown Funk with Mark Ronson?'),
    ('Mars', 'namesake', ["detective", "teen", "teenage", "student", "private investigator", "investigator"], 'Who is Veronica Mars?'),
    ('Mars', 'eponym', ["chocolate", "caramel", "nougat", "candy", "sweet", "confectionery"], 'What is a Mars bar?'),
    ('Mars', 'eponym', ["mars", "mars inc", "mars incorporated"], 'Which company makes Snickers?'),
    ('Mars', 'eponym', ["mars", "mars inc", "mars incorporated"], "Which company makes M&M's?"),
    ('Mars', 'eponym', ["mars", "mars inc", "mars incorporated"], 'Which company makes Twix?'),
    ('Mars', 'eponym', ["mars", "god of war"], 'Which Roman god is the month of March named after?'),
    ('Mars', 'eponym', ["damage", "damages", "spoil", "spoils", "ruin", "ruins", "blemish", "spoiled", "ruined", "damaged"], "What does the word 'mars' mean in 'a scratch that mars the finish'?"),
    ('Mars', 'eponym', ["candy", "chocolate", "confectionery", "food", "pet food", "snacks"], 'What does the company Mars, Incorporated make?'),
    ('Mars', 'related', ["port", "city", "france"], 'What is Marseille?'),
    ('Mars', 'related', ["mercury"], 'Which planet is closest to the Sun?'),
    ('Mars', 'syntactic', ["jupiter"], 'What is the largest planet in the solar system?'),
    ('Mars', 'syntactic', ["saturn"], 'Which planet is famous for its rings?'),
    ('Mars', 'syntactic', ["venus"], 'What is the hottest planet in the solar system?'),
    ('Mars', 'syntactic', ["earth"], 'What is the third planet from the Sun?'),
    ('Mars', 'syntactic', ["ganymede"], 'What is the largest moon of Jupiter?'),
    ('Mars', 'syntactic', ["neptune"], 'Which planet is farthest from the Sun?'),
    ('Mars', 'syntactic', ["moon"], "What is Earth's only natural satellite?"),
    ('Mars', 'syntactic', ["venus"], "Which planet is known as Earth's twin?"),
    ('Mars', 'syntactic', ["gagarin"], 'Who was the first person in space?'),
    ('Mars', 'syntactic', ["titan"], 'What is the largest moon of Saturn?'),
    ('Mars', 'related', ["eight", "8"], 'How many planets are in the solar system?'),
    ('Barack Obama', 'syntactic', ["biden"], 'Who was the 46th president of the United States?'),
    ('Barack Obama', 'syntactic', ["jefferson"], 'Who wrote the Declaration of Independence?'),
    ('Barack Obama', 'syntactic', ["reagan"], 'Which US president was previously a Hollywood actor?'),
    ('Barack Obama', 'syntactic', ["lincoln"], 'Who was the 16th president of the United States?'),
    ('Barack Obama', 'syntactic', ["harris"], "Who was Joe Biden's vice president?"),
    ('Barack Obama', 'syntactic', ["pence"], "Who was Donald Trump's first vice president?"),
    ('Barack Obama', 'related', ["kenya"], 'Nairobi is the capital of which African country?'),
    ('Barack Obama', 'related', ["chicago"], 'What is the largest city in Illinois?'),
    ('Barack Obama', 'related', ["springfield"], 'What is the capital of Illinois?'),
    ('Barack Obama', 'related', ["kennedy", "jfk"], 'Who was the youngest elected US president?'),
    ('Barack Obama', 'related', ["president", "commander in chief", "commander-in-chief"], 'Who is the commander-in-chief of the US armed forces?'),
    ('Japan', 'related', ["animation", "animated", "cartoon", "cartoons"], 'What is anime?'),
    ('Japan', 'related', ["comic", "comics", "graphic novel", "graphic novels", "cartoon"], 'What is manga?'),
    ('Japan', 'related', ["electronics", "playstation", "televisions", "tvs", "cameras"], 'What does Sony make?'),
    ('Japan', 'related', ["cars", "car", "motorcycles", "vehicles"], 'What does Honda make?'),
    ('Japan', 'related', ["pikachu"], 'What is the name of the yellow electric Pokemon?'),
    ('Japan', 'related', ["warrior", "warriors", "soldier", "soldiers", "military"], 'What was a samurai?'),
    ('Japan', 'related', ["sword", "blade"], 'What is a katana?'),
    ('Japan', 'related', ["wave", "waves"], 'What is a tsunami?'),
    ('Japan', 'related', ["robe", "garment", "dress", "clothing", "gown"], 'What is a kimono?'),
    ('Japan', 'syntactic', ["kuala lumpur"], 'What is the capital of Malaysia?'),
    ('Japan', 'syntactic', ["taipei"], 'What is the capital of Taiwan?'),
    ('Japan', 'syntactic', ["france"], 'Which country does the croissant come from?'),
    ('Japan', 'syntactic', ["russia"], 'What is the largest country in the world?'),
    ('Japan', 'syntactic', ["australia"], 'Which country is home to the kangaroo?'),
    ('Mars', 'syntactic', ["apollo"], 'Which mission first landed humans on the Moon?'),
    ('Mars', 'syntactic', ["nasa"], 'What is the name of the US space agency?'),
    ('Mars', 'syntactic', ["hubble"], 'What is the name of the famous space telescope launched in 1990?'),
    ('Mars', 'syntactic', ["jupiter"], 'Which planet has the Great Red Spot?'),
    ('Mars', 'syntactic', ["uranus"], 'Which planet rotates on its side?'),
    ('Mars', 'syntactic', ["pluto"], 'Which dwarf planet was once considered the ninth planet?'),
    ('Mars', 'syntactic', ["venus"], 'Which planet is the brightest in the night sky?'),
    ('Mars', 'related', ["red", "orange", "brown", "reddish"], 'What colour is rust?'),
    ('Mars', 'related', ["milky way"], 'What is the name of our galaxy?'),
    ('Mars', 'related', ["chocolate", "candy", "caramel", "nougat", "peanuts"], 'What is a Snickers bar?'),
    ('Mars', 'eponym', ["march"], 'Which month is named after the Roman god of war?'),
    ('Mars', 'namesake', ["hawaii", "honolulu"], 'Where was Bruno Mars born?'),
    ('Paris', 'namesake', ["paris"], 'What is the first name of the hotel heiress Ms. Hilton?'),
    ('Paris', 'namesake', ["achilles"], 'Whom did Paris kill with an arrow to the heel?'),
    ('Paris', 'namesake', ["hector"], 'Who was the older brother of Paris in the Iliad?'),
    ('Paris', 'eponym', ["pigment", "poison", "arsenic", "emerald", "insecticide", "paint", "colour", "color"], 'What is Paris green?'),
    ('Paris', 'related', ["versailles"], 'Which palace was the home of Louis XIV?'),
    ('Paris', 'related', ["napoleon"], 'Who was the first emperor of France?'),
    ('Paris', 'related', ["loire"], 'What is the longest river in France?'),
    ('Paris', 'syntactic', ["amsterdam"], 'What is the capital of the Netherlands?'),
    ('Paris', 'syntactic', ["brussels"], 'What is the capital of Belgium?'),
    ('Paris', 'syntactic', ["moscow"], 'In which city is the Kremlin?'),
    ('William Shakespeare', 'namesake', ["william"], 'What was the first name of the Norman duke who conquered England in 1066?'),
    ('William Shakespeare', 'namesake', ["bill", "will", "billy", "willy", "liam", "willie"], 'What is a common nickname for William?'),
    ('William Shakespeare', 'eponym', ["writes", "writer", "author", "dramatist"], 'What is a playwright?'),
    ('Harry Potter', 'namesake', ["harry"], 'Which prince married Meghan Markle?'),
    ('Harry Potter', 'namesake', ["magician", "magic", "escape artist", "escapologist", "illusionist"], "What was Harry Houdini's profession?"),
    ('Harry Potter', 'surname', ["potter", "beatrix potter"], "Which children's author created Peter Rabbit and Jemima Puddle-Duck?"),
    ('Harry Potter', 'eponym', ["potter", "potters", "ceramicist", "ceramist"], 'What do you call a person who makes pottery?'),
    ('Harry Potter', 'eponym', ["potter", "potters"], 'What is the job title of someone who shapes clay pots on a wheel?'),
    ('Paris', 'namesake', ["american"], "What is Paris Hilton's nationality?"),
    ('Paris', 'namesake', ["hotel", "hotels", "hospitality"], "What kind of business did Paris Hilton's great-grandfather found?"),
    ('Paris', 'namesake', ["personality", "star", "celebrity", "businesswoman", "model", "actress", "singer", "entrepreneur", "heiress", "socialite", "dj"], "What is Paris Hilton's profession?"),
    ('Paris', 'namesake', ["troy"], 'In Greek mythology, which city was Paris a prince of?'),
    ('Paris', 'namesake', ["united states", "us", "usa", "america"], 'Which country is Paris, Texas in?'),
    ('Paris', 'namesake', ["football", "soccer"], 'Which sport does the club Paris Saint-Germain play?'),
    ('Paris', 'eponym', ["powder"], 'Is plaster of Paris sold as a liquid, a powder or a metal?'),
    ('Paris', 'eponym', ["climate"], 'Is the Paris Agreement about climate change or about trade?'),
    ('Paris', 'eponym', ["britain", "great britain", "england", "united kingdom", "uk", "british"], 'Which country signed the 1783 Treaty of Paris with the United States?'),
    ('Paris', 'eponym', ["1783"], 'In which year was the Treaty of Paris that ended the American Revolutionary War signed?'),
    ('William Shakespeare', 'namesake', ["charles"], "Who is Prince William's father?"),
    ('William Shakespeare', 'namesake', ["elizabeth", "queen"], "Who was Prince William's grandmother?"),
    ('William Shakespeare', 'namesake', ["english", "british", "england"], 'What nationality was William Wordsworth?'),
    ('William Shakespeare', 'namesake', ["scottish", "scotland"], 'What nationality was William Wallace?'),
    ('William Shakespeare', 'namesake', ["crossbow", "bow", "arrow", "arrows"], 'What weapon did William Tell use?'),
    ('William Shakespeare', 'namesake', ["president", "25th"], 'Who was William McKinley?'),
    ('William Shakespeare', 'namesake', ["president", "27th", "chief justice"], 'Who was William Howard Taft?'),
    ('William Shakespeare', 'namesake', ["actor", "rapper", "singer"], 'Who is Will Smith?'),
    ('William Shakespeare', 'namesake', ["president", "42nd"], 'Who is Bill Clinton?'),
    ('William Shakespeare', 'namesake', ["microsoft", "businessman", "founder", "philanthropist"], 'Who is Bill Gates?'),
    ('William Shakespeare', 'eponym', ["14", "fourteen"], 'How many lines are in a sonnet?'),
    ('William Shakespeare', 'eponym', ["two", "2"], 'How many lines are in a couplet?'),
    ('William Shakespeare', 'eponym', ["four", "4"], 'How many lines are in a quatrain?'),
    ('William Shakespeare', 'eponym', ["poem", "poems", "poetry", "verse"], 'What is an ode?'),
    ('Harry Potter', 'namesake', ["british", "english", "england", "uk"], 'What nationality is Harry Styles?'),
    ('Harry Potter', 'namesake', ["singer"], 'Is Harry Styles a singer or a footballer?'),
    ('Harry Potter', 'namesake', ["britain", "united kingdom", "england", "uk", "british"], 'Which country is Prince Harry from?'),
    ('Harry Potter', 'namesake', ["prince", "royal", "duke", "son"], 'Who is Prince Harry?'),
    ('Harry Potter', 'namesake', ["football", "soccer"], 'What sport does Harry Kane play?'),
    ('Harry Potter', 'namesake', ["england"], 'Which national football team does Harry Kane captain?'),
    ('Harry Potter', 'namesake', ["33rd", "thirty-third"], 'Which number president was Harry Truman?'),
    ('Harry Potter', 'namesake', ["magician", "magic", "escape"], 'Was Harry Houdini a magician or a scientist?'),
    ('Harry Potter', 'surname', ["english", "british", "england"], 'What nationality was Beatrix Potter?'),
    ('Harry Potter', 'surname', ["rabbits", "rabbit", "animals", "animal"], 'What kind of animals did Beatrix Potter write about?'),
    ('Harry Potter', 'eponym', ["clay", "ceramic", "ceramics", "pots", "pottery"], 'What is pottery?'),
    ('Harry Potter', 'eponym', ["clay"], 'What material does a potter work with?'),
    ('Harry Potter', 'eponym', ["wheel", "potter's wheel", "pottery wheel"], 'What tool does a potter use to shape clay?'),
    ('Barack Obama', 'surname', ["american", "united states"], "What is Michelle Obama's nationality?"),
    ('Barack Obama', 'surname', ["chicago", "illinois"], 'Which city is Michelle Obama from?'),
    ('Barack Obama', 'syntactic', ["president"], 'Who was Jimmy Carter?'),
    ('Barack Obama', 'syntactic', ["president", "43rd"], 'Who is George W. Bush?'),
    ('Barack Obama', 'syntactic', ["president", "actor"], 'Who was Ronald Reagan?'),
    ('Barack Obama', 'syntactic', ["president", "26th"], 'Who was Theodore Roosevelt?'),
    ('Barack Obama', 'syntactic', ["vice president", "governor", "politician"], 'Who is Mike Pence?'),
    ('Barack Obama', 'syntactic', ["bill"], "Who is Hillary Clinton's husband?"),
    ('Barack Obama', 'syntactic', ["first lady", "wife", "educator", "teacher"], 'Who is Jill Biden?'),
    ('Barack Obama', 'syntactic', ["first lady", "wife", "model"], 'Who is Melania Trump?'),
    ('Barack Obama', 'syntactic', ["first lady", "wife", "diplomat", "activist"], 'Who was Eleanor Roosevelt?'),
    ('Barack Obama', 'syntactic', ["first lady", "wife"], 'Who was Jacqueline Kennedy?'),
    ('Barack Obama', 'related', ["wife", "spouse", "president"], 'What is a first lady?'),
    ('Japan', 'related', ["dog", "breed"], 'What is a Shiba Inu?'),
    ('Japan', 'related', ["tree", "trees", "plant", "plants", "miniature"], 'What is a bonsai?'),
    ('Japan', 'related', ["rice", "wine", "alcohol", "alcoholic", "drink", "beverage"], 'What is sake?'),
    ('Japan', 'related', ["soy", "soybean", "soybeans", "bean curd", "beans"], 'What is tofu?'),
    ('Japan', 'related', ["martial art", "martial arts", "sport", "wrestling", "combat"], 'What is judo?'),
    ('Japan', 'related', ["entertainer", "entertainers", "performer", "performers", "artist", "hostess", "woman"], 'What is a geisha?'),
    ('Japan', 'related', ["horseradish", "paste", "condiment", "plant", "spicy", "green"], 'What is wasabi?'),
    ('Mars', 'namesake', ["war"], 'What is Mars the god of in Roman mythology?'),
    ('Mars', 'namesake', ["ares"], 'What is the Greek name of the Roman god of war?'),
    ('Mars', 'namesake', ["american", "united states"], 'What nationality is Bruno Mars?'),
    ('Mars', 'namesake', ["singer"], 'Is Bruno Mars a singer or an actor?'),
    ('Mars', 'namesake', ["pop", "funk", "r&b", "rnb", "soul", "rock"], 'What kind of music does Bruno Mars make?'),
    ('Mars', 'namesake', ["band", "rock", "music"], 'What is Thirty Seconds to Mars?'),
    ('Mars', 'eponym', ["chocolate", "caramel", "nougat"], 'What is the main flavour of a Mars bar?'),
    ('Mars', 'eponym', ["food", "candy", "confectionery", "chocolate", "snacks", "pet"], 'What kind of company is Mars, Incorporated?'),
    ('Mars', 'eponym', ["chocolate", "candy", "confectionery"], "What is M&M's?"),
    ('Mars', 'related', ["chocolate", "candy", "caramel"], 'What is a Milky Way bar?'),
    ('Mars', 'related', ["god of war", "war"], 'Who was Ares in Greek mythology?'),
    ('Mars', 'syntactic', ["neptune"], 'Who was the Roman god of the sea?'),
    ('Mars', 'syntactic', ["jupiter"], 'Who was the Roman king of the gods?'),
    ('Mars', 'syntactic', ["venus"], 'Who was the Roman goddess of love?'),
    ('Mars', 'syntactic', ["ares"], 'Who was the Greek god of war?'),
    ('Mars', 'syntactic', ["venus"], 'Which planet is named after the Roman goddess of love?'),
    ('Mars', 'syntactic', ["jupiter"], 'Which planet is named after the Roman king of the gods?'),
    ('Mars', 'syntactic', ["neptune"], 'Which planet is named after the Roman god of the sea?'),
]


def _slug(target: str) -> str:
    return target.split()[-1].lower()[:4]


def build(asker: Asker, out: Path, reuse: bool = False) -> dict:
    path = out / "neighbours.jsonl"
    rows = [json.loads(line) for line in path.open() if line.strip()]
    rows = [r for r in rows if not r["id"].startswith("nb-x")]  # a rerun replaces what it added
    known = {r["question"] for r in rows}
    candidates = [c for c in CANDIDATES if c[3] not in known]
    log_path = out / "neighbour_probe_log.json"
    # Answers of an earlier probe of the same model (greedy, deterministic): only new candidates are asked.
    answers = {c["question"]: c["answer"] for c in json.loads(log_path.read_text())["candidates"]} \
        if reuse and log_path.exists() else {}
    missing = [c[3] for c in candidates if c[3] not in answers]
    answers.update(zip(missing, asker.answer(missing)))
    kept: dict[str, int] = defaultdict(int)
    log = []
    for target, kind, golds, question in candidates:
        ok = contains_gold(answers[question], golds)
        log.append({"target": target, "kind": kind, "question": question, "golds": golds,
                    "answer": answers[question], "kept": ok})
        if not ok:
            continue
        n = kept[target]
        kept[target] += 1
        row = {"id": f"nb-x{_slug(target)}-{n:02d}", "target": target, "kind": kind, "question": question,
               "golds": golds}
        if n % 3 == 1:
            row["split"] = "heldout"
        rows.append(row)
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary = {"candidates": len(candidates), "kept": sum(kept.values()), "kept_per_target": dict(kept),
               "rows": len(rows), "heldout": sum(r.get("split") == "heldout" for r in rows),
               "rows_per_kind": dict(Counter(r["kind"] for r in rows))}
    log_path.write_text(json.dumps({"summary": summary, "candidates": log},
                                                             indent=1, ensure_ascii=False) + "\n")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="a running gateway (default: start one, serving its configured model)")
    parser.add_argument("--api-key", help="a tenant key of --base-url with no active targets")
    parser.add_argument("--out", type=Path, default=DATA)
    parser.add_argument("--reuse", action="store_true",
                        help="keep the answers in OUT/neighbour_probe_log.json (same model) and ask only new questions")
    args = parser.parse_args(argv)
    server = None
    if args.base_url:
        asker = Asker(args.base_url, args.api_key)
    else:
        from bench.common import start_gateway

        server = start_gateway(Path(tempfile.mkdtemp(prefix="lethe-neighbours-")))
        asker = Asker(server.base_url, server.api_key)
    try:
        summary = build(asker, args.out, args.reuse)
    finally:
        if server is not None:
            server.stop()
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
