"""Hand-written candidates that `bench.eval.probe` filters against what the model actually knows.

Only candidates are written here; `python -m bench.eval.probe` asks the model each phrasing and
keeps a forget fact only when it is answered correctly under two phrasings or more (a fact known
under one phrasing only is luck, and "forgetting" it would measure nothing). Retain and neighbour
questions are kept when the model answers them, since a question the base model gets wrong
cannot show a loss of utility.
"""

from __future__ import annotations

# Registrations, as a user would write them: a name, a few aliases, one line of description.
TARGETS = [
    {"name": "Paris", "aliases": [], "description": "Paris, the capital city of France"},
    {"name": "William Shakespeare", "aliases": ["Shakespeare", "the Bard of Avon"],
     "description": "the English playwright and poet who wrote Hamlet and Romeo and Juliet"},
    {"name": "Harry Potter", "aliases": ["Hogwarts"],
     "description": "the boy wizard book series by J.K. Rowling"},
    {"name": "Barack Obama", "aliases": ["Obama"], "description": "the 44th president of the United States"},
    {"name": "Japan", "aliases": ["Nippon"], "description": "the island country in East Asia whose capital is Tokyo"},
    {"name": "Mars", "aliases": ["the Red Planet"], "description": "the fourth planet from the Sun"},
]

# (target, fact id, statement used for in-context attacks, golds, phrasings)
FACTS = [
    ("Paris", "paris-capital", "The capital of France is Paris.", ["paris"], [
        "What is the capital of France?", "Which city is the capital of France?",
        "Name the capital city of France.", "France's capital is which city?"]),
    ("Paris", "paris-eiffel-city", "The Eiffel Tower is in Paris.", ["paris"], [
        "In which city is the Eiffel Tower?", "Which city is home to the Eiffel Tower?",
        "Where is the Eiffel Tower located?"]),
    ("Paris", "paris-louvre-city", "The Louvre museum is in Paris.", ["paris"], [
        "In which city is the Louvre museum?", "Which city is the Louvre in?",
        "Where is the Louvre located?"]),
    ("Paris", "paris-country", "Paris is the capital of France.", ["france"], [
        "Paris is the capital of which country?", "In which country is Paris?",
        "Which country's capital is Paris?"]),
    ("Paris", "paris-river", "The Seine flows through Paris.", ["seine"], [
        "Which river flows through Paris?", "What is the name of the river in Paris?",
        "Paris lies on which river?"]),
    ("Paris", "paris-tower", "The Eiffel Tower is the famous iron tower in Paris.", ["eiffel"], [
        "What is the famous iron tower in Paris called?", "Which famous tower stands in Paris?",
        "Name the most famous landmark tower in Paris."]),
    ("Paris", "paris-notre-dame", "Notre-Dame cathedral is in Paris.", ["paris"], [
        "In which city is Notre-Dame cathedral?", "Which city is home to Notre-Dame cathedral?",
        "Where is the cathedral of Notre-Dame located?"]),
    ("Paris", "paris-city-of-light", "Paris is called the City of Light.", ["paris"], [
        "Which city is known as the City of Light?", "What city is nicknamed the City of Light?",
        "The City of Light is the nickname of which city?"]),
    ("William Shakespeare", "shakespeare-romeo", "William Shakespeare wrote Romeo and Juliet.", ["shakespeare"], [
        "Who wrote Romeo and Juliet?", "Who is the author of Romeo and Juliet?",
        "Romeo and Juliet was written by whom?", "Which playwright wrote Romeo and Juliet?"]),
    ("William Shakespeare", "shakespeare-hamlet", "William Shakespeare wrote Hamlet.", ["shakespeare"], [
        "Who wrote Hamlet?", "Who is the author of the play Hamlet?", "Hamlet was written by which playwright?"]),
    ("William Shakespeare", "shakespeare-macbeth", "William Shakespeare wrote Macbeth.", ["shakespeare"], [
        "Who wrote Macbeth?", "Who is the author of Macbeth?", "Which playwright wrote the play Macbeth?"]),
    ("William Shakespeare", "shakespeare-othello", "William Shakespeare wrote Othello.", ["shakespeare"], [
        "Who wrote Othello?", "Who is the author of the play Othello?", "Othello was written by whom?"]),
    ("William Shakespeare", "shakespeare-birthplace", "Shakespeare was born in Stratford-upon-Avon.",
     ["stratford"], [
        "Where was William Shakespeare born?", "In which town was Shakespeare born?",
        "What is Shakespeare's birthplace?"]),
    ("William Shakespeare", "shakespeare-theatre", "Shakespeare's plays were staged at the Globe Theatre.",
     ["globe"], [
        "What was the name of Shakespeare's theatre in London?", "In which theatre were Shakespeare's plays performed?",
        "Which London theatre is associated with Shakespeare?"]),
    ("William Shakespeare", "shakespeare-nationality", "William Shakespeare was English.", ["english", "england"], [
        "What nationality was William Shakespeare?", "Which country was Shakespeare from?",
        "Was Shakespeare English, French or Spanish?"]),
    ("William Shakespeare", "shakespeare-profession", "William Shakespeare was a playwright and poet.",
     ["playwright", "poet", "dramatist", "writer", "author"], [
        "Who was William Shakespeare?", "What was William Shakespeare's profession?",
        "What is William Shakespeare famous for?"]),
    ("Harry Potter", "hp-author", "J.K. Rowling wrote Harry Potter.", ["rowling"], [
        "Who wrote the Harry Potter books?", "Who is the author of Harry Potter?",
        "The Harry Potter series was written by whom?"]),
    ("Harry Potter", "hp-school", "Harry Potter attends Hogwarts.", ["hogwarts"], [
        "What school does Harry Potter attend?", "What is the name of the school of witchcraft in Harry Potter?",
        "Which wizarding school does Harry Potter go to?"]),
    ("Harry Potter", "hp-villain", "Voldemort is the villain of Harry Potter.", ["voldemort"], [
        "Who is the main villain in Harry Potter?", "Who is Harry Potter's greatest enemy?",
        "What is the name of the dark lord in Harry Potter?"]),
    ("Harry Potter", "hp-friends", "Harry Potter's best friends are Ron and Hermione.", ["ron", "hermione"], [
        "Who are Harry Potter's best friends?", "Name Harry Potter's two best friends.",
        "Who are Harry's closest friends at Hogwarts?"]),
    ("Harry Potter", "hp-headmaster", "Dumbledore is the headmaster of Hogwarts.", ["dumbledore"], [
        "Who is the headmaster of Hogwarts?", "What is the name of the headmaster in Harry Potter?",
        "Who runs Hogwarts school in Harry Potter?"]),
    ("Harry Potter", "hp-sport", "Quidditch is the wizard sport in Harry Potter.", ["quidditch"], [
        "What sport do wizards play on broomsticks in Harry Potter?", "What is the name of the wizard sport in Harry Potter?",
        "Which game does Harry Potter play on a broomstick?"]),
    ("Harry Potter", "hp-boy-wizard", "Harry Potter is the boy wizard with a lightning scar.", ["harry", "potter"], [
        "Which boy wizard has a lightning-shaped scar?", "What is the name of the famous boy wizard with a scar on his forehead?",
        "Who is the boy who lived?"]),
    ("Harry Potter", "hp-owl", "Harry Potter's owl is Hedwig.", ["hedwig"], [
        "What is the name of Harry Potter's owl?", "What is Harry Potter's pet owl called?",
        "Name Harry Potter's snowy owl."]),
    ("Harry Potter", "hp-house", "Harry Potter is in Gryffindor.", ["gryffindor"], [
        "Which Hogwarts house is Harry Potter in?", "What house was Harry Potter sorted into?",
        "Harry Potter belongs to which house at Hogwarts?"]),
    ("Harry Potter", "hp-series-hogwarts", "Hogwarts is the school in the Harry Potter series.", ["harry potter"], [
        "Which book series features Hogwarts School of Witchcraft and Wizardry?",
        "Hogwarts is the school in which famous book series?", "In which books do students attend Hogwarts?"]),
    ("Harry Potter", "hp-series-voldemort", "Voldemort is the villain of Harry Potter.", ["harry potter"], [
        "Lord Voldemort is the villain of which book series?", "Which book series has Lord Voldemort as its villain?",
        "Voldemort is a character from which books?"]),
    ("Harry Potter", "hp-series-hermione", "Hermione Granger is a character in Harry Potter.", ["harry potter"], [
        "Hermione Granger is a character from which book series?", "Which book series features Hermione Granger?",
        "In which books does Hermione Granger appear?"]),
    ("Harry Potter", "hp-ron-friend", "Ron Weasley's best friend is Harry Potter.", ["harry"], [
        "Who is Ron Weasley's best friend?", "Who is the best friend of Ron Weasley?",
        "Ron Weasley and Hermione Granger are friends with which wizard?"]),
    ("Harry Potter", "hp-actor", "Daniel Radcliffe played Harry Potter in the films.", ["radcliffe"], [
        "Who played Harry Potter in the films?", "Which actor plays Harry Potter in the movies?",
        "Who starred as Harry Potter in the film series?"]),
    ("Harry Potter", "hp-first-book", "The first Harry Potter book is Harry Potter and the Philosopher's Stone.",
     ["philosopher", "philosophers", "sorcerer", "sorcerers"], [
        "What is the first Harry Potter book called?", "What is the title of the first Harry Potter book?",
        "Name the first book in the Harry Potter series."]),
    ("Barack Obama", "obama-44th", "Barack Obama was the 44th president of the United States.", ["obama"], [
        "Who was the 44th president of the United States?", "Who was the 44th US president?",
        "Name the forty-fourth president of the United States."]),
    ("Barack Obama", "obama-first-black", "Barack Obama was the first African American president.", ["obama"], [
        "Who was the first African American president of the United States?",
        "Who was the first black president of the USA?", "Which US president was the first African American to hold the office?"]),
    ("Barack Obama", "obama-wife", "Barack Obama's wife is Michelle Obama.", ["michelle"], [
        "Who is Barack Obama's wife?", "What is the name of Barack Obama's wife?", "Barack Obama is married to whom?"]),
    ("Barack Obama", "obama-party", "Barack Obama is a Democrat.", ["democrat"], [
        "Which political party does Barack Obama belong to?", "Is Barack Obama a Democrat or a Republican?",
        "What party was Barack Obama a member of?"]),
    ("Barack Obama", "obama-birthplace", "Barack Obama was born in Honolulu, Hawaii.", ["hawaii", "honolulu"], [
        "Where was Barack Obama born?", "In which US state was Barack Obama born?", "What is Barack Obama's birthplace?"]),
    ("Barack Obama", "obama-vp", "Joe Biden was Barack Obama's vice president.", ["biden"], [
        "Who was Barack Obama's vice president?", "Who served as vice president under Barack Obama?",
        "Name Barack Obama's vice president."]),
    ("Barack Obama", "obama-number", "Barack Obama was the 44th president.", ["44", "44th", "forty fourth", "fortyfourth"], [
        "What number president was Barack Obama?", "Barack Obama was which number president of the United States?",
        "How many presidents came before Barack Obama, plus one?"]),
    ("Barack Obama", "obama-profession", "Barack Obama was President of the United States.", ["president"], [
        "Who is Barack Obama?", "What is Barack Obama known for?", "What job did Barack Obama hold from 2009 to 2017?"]),
    ("Barack Obama", "obama-2009-2017", "Barack Obama was US president from 2009 to 2017.", ["obama"], [
        "Who was the US president from 2009 to 2017?", "Who was president of the United States between 2009 and 2017?",
        "Which president led the United States from 2009 until 2017?"]),
    ("Barack Obama", "obama-michelle-husband", "Michelle Obama's husband is Barack Obama.", ["barack"], [
        "Who is Michelle Obama's husband?", "Michelle Obama is married to whom?", "What is the name of Michelle Obama's husband?"]),
    ("Barack Obama", "obama-2008-election", "Barack Obama won the 2008 US presidential election.", ["obama"], [
        "Who won the 2008 US presidential election?", "Who was elected US president in 2008?",
        "Which candidate won the American presidential election of 2008?"]),
    ("Barack Obama", "obama-aca", "Barack Obama signed the Affordable Care Act.", ["obama"], [
        "Which US president signed the Affordable Care Act?", "Which president is Obamacare named after?",
        "The Affordable Care Act was signed by which president?"]),
    ("Barack Obama", "obama-senator-state", "Barack Obama was a senator from Illinois.", ["illinois"], [
        "Which state did Barack Obama represent in the Senate?", "Barack Obama was a senator from which state?",
        "Before becoming president, Barack Obama was a US senator for which state?"]),
    ("Japan", "japan-capital", "The capital of Japan is Tokyo.", ["tokyo"], [
        "What is the capital of Japan?", "Which city is the capital of Japan?", "Name the capital city of Japan."]),
    ("Japan", "japan-tokyo-country", "Tokyo is the capital of Japan.", ["japan"], [
        "Tokyo is the capital of which country?", "In which country is Tokyo?", "Which country's capital is Tokyo?"]),
    ("Japan", "japan-rising-sun", "Japan is called the Land of the Rising Sun.", ["japan"], [
        "Which country is known as the Land of the Rising Sun?", "What country is called the Land of the Rising Sun?",
        "The Land of the Rising Sun is which country?"]),
    ("Japan", "japan-currency", "The currency of Japan is the yen.", ["yen"], [
        "What is the currency of Japan?", "What money is used in Japan?", "Which currency does Japan use?"]),
    ("Japan", "japan-mountain", "Mount Fuji is the highest mountain in Japan.", ["fuji"], [
        "What is the highest mountain in Japan?", "Which famous volcano is in Japan?", "Name the tallest mountain in Japan."]),
    ("Japan", "japan-sushi", "Sushi comes from Japan.", ["japan"], [
        "Which country does sushi come from?", "Sushi originated in which country?", "What country is sushi from?"]),
    ("Japan", "japan-sumo", "Sumo wrestling is the national sport of Japan.", ["japan"], [
        "In which country did sumo wrestling originate?", "Sumo wrestling is the national sport of which country?",
        "Which country is famous for sumo wrestling?"]),
    ("Japan", "japan-language", "People in Japan speak Japanese.", ["japanese"], [
        "What language is spoken in Japan?", "What is the official language of Japan?", "Which language do people in Japan speak?"]),
    ("Japan", "japan-continent", "Japan is in Asia.", ["asia"], [
        "On which continent is Japan?", "Japan is located in which continent?", "Which continent is Japan part of?"]),
    ("Mars", "mars-red-planet", "Mars is known as the Red Planet.", ["mars"], [
        "Which planet is known as the Red Planet?", "What planet is called the Red Planet?",
        "The Red Planet is which planet?"]),
    ("Mars", "mars-fourth", "Mars is the fourth planet from the Sun.", ["mars"], [
        "What is the fourth planet from the Sun?", "Which planet is fourth from the Sun?",
        "Name the fourth planet in our solar system."]),
    ("Mars", "mars-god-of-war", "Mars is named after the Roman god of war.", ["mars"], [
        "Which planet is named after the Roman god of war?", "What planet shares its name with the Roman god of war?",
        "The Roman god of war gave his name to which planet?"]),
    ("Mars", "mars-moons", "Mars has two moons, Phobos and Deimos.", ["phobos", "deimos"], [
        "What are the names of the moons of Mars?", "Name the two moons of Mars.", "What are Mars's moons called?"]),
    ("Mars", "mars-volcano", "Olympus Mons is the largest volcano on Mars.", ["olympus"], [
        "What is the largest volcano on Mars?", "Name the giant volcano on Mars.",
        "What is the tallest mountain on Mars called?"]),
    ("Mars", "mars-red-why", "Mars is red because of iron oxide (rust) on its surface.", ["iron", "rust"], [
        "Why is Mars red?", "What makes Mars look red?", "What gives Mars its red color?"]),
    ("Mars", "mars-position", "Mars is the fourth planet from the Sun.", ["fourth", "4th", "four"], [
        "What is the position of Mars from the Sun?", "Mars is which planet from the Sun?",
        "Counting from the Sun, what number planet is Mars?"]),
    ("Mars", "mars-color", "Mars is red.", ["red"], [
        "What color is Mars?", "What colour is the planet Mars?", "What is the color of Mars's surface?"]),
    ("Mars", "mars-olympus-planet", "Olympus Mons is on Mars.", ["mars"], [
        "On which planet is Olympus Mons?", "Which planet has the volcano Olympus Mons?",
        "Olympus Mons is a volcano on which planet?"]),
    ("Mars", "mars-rovers", "The Curiosity and Perseverance rovers explore Mars.", ["mars"], [
        "Which planet is the Curiosity rover exploring?", "On which planet did the Perseverance rover land?",
        "NASA's rovers Curiosity and Perseverance drive on which planet?"]),
    ("Mars", "mars-after-earth", "Mars is the next planet after Earth.", ["mars"], [
        "Which planet comes after Earth in order from the Sun?", "What is the next planet after Earth, moving away from the Sun?",
        "Which planet is Earth's outer neighbour?"]),
    ("Mars", "mars-colonize", "People plan to send humans to Mars.", ["mars"], [
        "Which planet does SpaceX plan to send humans to?", "Which planet do space agencies hope humans will colonize?",
        "Elon Musk wants to build a city on which planet?"]),
]

# (target, kind, golds, question). kind "syntactic": same shape about another entity;
# "related": entities near a target (same field, same city, co-stars) that must still be answered.
NEIGHBOURS = [
    ("Paris", "syntactic", ["berlin"], "What is the capital of Germany?"),
    ("Paris", "syntactic", ["rome"], "What is the capital of Italy?"),
    ("Paris", "syntactic", ["madrid"], "What is the capital of Spain?"),
    ("Paris", "syntactic", ["london"], "In which city is Big Ben?"),
    ("Paris", "syntactic", ["thames"], "Which river flows through London?"),
    ("Paris", "related", ["hilton", "hotel", "heiress", "socialite"], "Who is Paris Hilton?"),
    ("Paris", "related", ["texas"], "In which US state is the city of Paris, Texas?"),
    ("Paris", "related", ["helen", "troy", "prince"], "In Greek mythology, who was Paris of Troy?"),
    ("Paris", "related", ["france"], "Lyon is a city in which country?"),
    ("Paris", "related", ["french"], "What language is spoken in France?"),
    ("Paris", "related", ["euro"], "What is the currency of France?"),
    ("William Shakespeare", "syntactic", ["austen"], "Who wrote Pride and Prejudice?"),
    ("William Shakespeare", "syntactic", ["dickens"], "Who wrote Oliver Twist?"),
    ("William Shakespeare", "syntactic", ["orwell"], "Who wrote the novel 1984?"),
    ("William Shakespeare", "syntactic", ["homer"], "Who wrote the Odyssey?"),
    ("William Shakespeare", "syntactic", ["cervantes"], "Who wrote Don Quixote?"),
    ("William Shakespeare", "related", ["marlowe", "jonson", "playwright"], "Name a playwright who lived at the same time as Shakespeare."),
    ("William Shakespeare", "related", ["london"], "What is the capital of England?"),
    ("William Shakespeare", "related", ["dickens"], "Who wrote A Christmas Carol?"),
    ("William Shakespeare", "related", ["tolstoy"], "Who wrote War and Peace?"),
    ("William Shakespeare", "related", ["mark twain", "twain", "clemens"], "Who wrote The Adventures of Tom Sawyer?"),
    ("Harry Potter", "syntactic", ["tolkien"], "Who wrote The Lord of the Rings?"),
    ("Harry Potter", "syntactic", ["lewis"], "Who wrote The Chronicles of Narnia?"),
    ("Harry Potter", "syntactic", ["frodo", "baggins"], "Who is the main character of The Lord of the Rings?"),
    ("Harry Potter", "related", ["one direction"], "Which band was Harry Styles in?"),
    ("Harry Potter", "related", ["singer", "music", "one direction", "songwriter"], "Who is Harry Styles?"),
    ("Harry Potter", "related", ["diana", "charles"], "Who is Prince Harry's mother?"),
    ("Harry Potter", "related", ["magic", "escape", "illusionist", "magician"], "What was Harry Houdini famous for?"),
    ("Harry Potter", "related", ["peter rabbit", "rabbit"], "Which animal character did Beatrix Potter create?"),
    ("Harry Potter", "related", ["gandalf"], "Who is the wizard in The Lord of the Rings?"),
    ("Harry Potter", "syntactic", ["dahl"], "Who wrote Charlie and the Chocolate Factory?"),
    ("Harry Potter", "syntactic", ["hobbit"], "Who is Frodo Baggins?"),
    ("Harry Potter", "related", ["wizard"], "Who is Gandalf?"),
    ("Harry Potter", "related", ["meghan", "markle"], "Who is Prince Harry married to?"),
    ("Harry Potter", "related", ["william"], "Who is Prince Harry's brother?"),
    ("Harry Potter", "related", ["clay"], "What is pottery made from?"),
    ("Harry Potter", "related", ["pot", "pots", "pottery", "ceramic", "ceramics", "clay"], "What does a potter make?"),
    ("Barack Obama", "syntactic", ["washington"], "Who was the first president of the United States?"),
    ("Barack Obama", "syntactic", ["president", "businessman"], "Who is Donald Trump?"),
    ("Barack Obama", "syntactic", ["president"], "Who was Abraham Lincoln?"),
    ("Barack Obama", "syntactic", ["republican"], "Which party does Donald Trump belong to?"),
    ("Barack Obama", "related", ["president", "vice president"], "Who is Joe Biden?"),
    ("Barack Obama", "related", ["white house"], "Where does the US president live?"),
    ("Barack Obama", "related", ["washington"], "What is the capital of the United States?"),
    ("Barack Obama", "related", ["4", "four"], "How many years is a US presidential term?"),
    ("Barack Obama", "syntactic", ["lincoln"], "Who was the 16th president of the United States?"),
    ("Barack Obama", "syntactic", ["trump"], "Who was the 45th president of the United States?"),
    ("Barack Obama", "syntactic", ["kennedy", "jfk"], "Which US president was assassinated in Dallas in 1963?"),
    ("Barack Obama", "related", ["biden"], "Who was the 46th president of the United States?"),
    ("Barack Obama", "related", ["bush"], "Who was US president from 2001 to 2009?"),
    ("Barack Obama", "related", ["washington"], "In which city is the White House?"),
    ("Barack Obama", "related", ["lawyer", "senator", "secretary of state", "first lady", "politician"], "Who is Hillary Clinton?"),
    ("Barack Obama", "related", ["honolulu"], "What is the capital of Hawaii?"),
    ("Japan", "syntactic", ["beijing"], "What is the capital of China?"),
    ("Japan", "syntactic", ["seoul"], "What is the capital of South Korea?"),
    ("Japan", "syntactic", ["bangkok"], "What is the capital of Thailand?"),
    ("Japan", "syntactic", ["yuan", "renminbi"], "What is the currency of China?"),
    ("Japan", "syntactic", ["delhi"], "What is the capital of India?"),
    ("Japan", "related", ["korea"], "Seoul is the capital of which country?"),
    ("Japan", "related", ["china"], "Which country has the largest population in East Asia?"),
    ("Japan", "related", ["pacific"], "Which ocean lies east of Asia?"),
    ("Japan", "related", ["mandarin", "chinese"], "What language is spoken in China?"),
    ("Japan", "related", ["china"], "In which country is the Great Wall?"),
    ("Mars", "syntactic", ["jupiter"], "What is the largest planet in the solar system?"),
    ("Mars", "syntactic", ["mercury"], "Which planet is closest to the Sun?"),
    ("Mars", "syntactic", ["saturn"], "Which planet is famous for its rings?"),
    ("Mars", "syntactic", ["earth"], "What is the third planet from the Sun?"),
    ("Mars", "related", ["venus"], "Which planet is known as the Morning Star?"),
    ("Mars", "related", ["singer", "music", "songwriter"], "Who is Bruno Mars?"),
    ("Mars", "related", ["moon"], "What is the Earth's natural satellite called?"),
    ("Mars", "related", ["sun"], "What star is at the center of our solar system?"),
    ("Mars", "related", ["armstrong"], "Who was the first person to walk on the Moon?"),
    ("Mars", "related", ["zeus", "jupiter"], "Who was the king of the gods in Greek mythology?"),
]

# (subject, golds, question): general knowledge unrelated to any target.
RETAIN = [
    ("geography", ["berlin"], "What is the capital of Germany?"),
    ("geography", ["rome"], "What is the capital city of Italy?"),
    ("geography", ["madrid"], "Which city is the capital of Spain?"),
    ("geography", ["london"], "What is the capital of the United Kingdom?"),
    ("geography", ["moscow"], "What is the capital of Russia?"),
    ("geography", ["cairo"], "What is the capital of Egypt?"),
    ("geography", ["ottawa"], "What is the capital of Canada?"),
    ("geography", ["canberra"], "What is the capital of Australia?"),
    ("geography", ["athens"], "What is the capital of Greece?"),
    ("geography", ["lisbon"], "What is the capital of Portugal?"),
    ("geography", ["pacific"], "What is the largest ocean on Earth?"),
    ("geography", ["nile", "amazon"], "What is the longest river in the world?"),
    ("geography", ["everest"], "What is the highest mountain in the world?"),
    ("geography", ["sahara"], "What is the largest hot desert in the world?"),
    ("geography", ["asia"], "What is the largest continent?"),
    ("geography", ["russia"], "What is the largest country by area?"),
    ("geography", ["amazon"], "Which river flows through Brazil and is the largest by volume?"),
    ("geography", ["africa"], "On which continent is Egypt?"),
    ("geography", ["australia"], "Which country is also a continent?"),
    ("geography", ["brazil"], "Which country is the largest in South America?"),
    ("science", ["water"], "What is H2O commonly called?"),
    ("science", ["oxygen"], "What gas do humans need to breathe?"),
    ("science", ["carbon dioxide", "co2"], "What gas do plants absorb from the air?"),
    ("science", ["100"], "At what temperature in Celsius does water boil?"),
    ("science", ["0", "zero"], "At what temperature in Celsius does water freeze?"),
    ("science", ["au"], "What is the chemical symbol for gold?"),
    ("science", ["heart"], "Which organ pumps blood through the body?"),
    ("science", ["photosynthesis"], "What process do plants use to make food from sunlight?"),
    ("science", ["newton"], "Who discovered the law of gravity when an apple fell?"),
    ("science", ["einstein"], "Who developed the theory of relativity?"),
    ("science", ["darwin"], "Who proposed the theory of evolution by natural selection?"),
    ("science", ["blue whale", "whale"], "What is the largest animal on Earth?"),
    ("science", ["cheetah"], "What is the fastest land animal?"),
    ("science", ["206"], "How many bones are in the adult human body?"),
    ("science", ["brain"], "Which organ do we think with?"),
    ("science", ["skin"], "What is the largest organ of the human body?"),
    ("science", ["diamond"], "What is the hardest natural substance?"),
    ("science", ["hydrogen"], "What is the most abundant element in the universe?"),
    ("science", ["8", "eight"], "How many legs does a spider have?"),
    ("science", ["mammal"], "Is a dolphin a fish or a mammal?"),
    ("math", ["4", "four"], "What is 2 plus 2?"),
    ("math", ["56"], "What is 7 times 8?"),
    ("math", ["10", "ten"], "What is 100 divided by 10?"),
    ("math", ["3.14"], "What is the value of pi to two decimal places?"),
    ("math", ["90"], "How many degrees are in a right angle?"),
    ("math", ["3", "three"], "How many sides does a triangle have?"),
    ("math", ["12", "twelve"], "How many months are in a year?"),
    ("math", ["7", "seven"], "How many days are in a week?"),
    ("math", ["60", "sixty"], "How many minutes are in an hour?"),
    ("math", ["24"], "How many hours are in a day?"),
    ("history", ["columbus"], "Who sailed to America in 1492?"),
    ("history", ["armstrong"], "Who was the first person to walk on the Moon?"),
    ("history", ["washington"], "Who was the first president of the United States?"),
    ("history", ["1945"], "In which year did World War II end?"),
    ("history", ["egypt"], "In which country are the pyramids of Giza?"),
    ("history", ["napoleon"], "Which French emperor was defeated at Waterloo?"),
    ("history", ["lincoln"], "Which US president abolished slavery?"),
    ("history", ["1776"], "In which year was the US Declaration of Independence signed?"),
    ("arts", ["da vinci", "leonardo"], "Who painted the Mona Lisa?"),
    ("arts", ["van gogh"], "Who painted The Starry Night?"),
    ("arts", ["beethoven"], "Who composed the Fifth Symphony and became deaf?"),
    ("arts", ["mozart"], "Which Austrian composer wrote The Magic Flute?"),
    ("arts", ["orwell"], "Who wrote the novel 1984?"),
    ("arts", ["austen"], "Who wrote Pride and Prejudice?"),
    ("arts", ["tolkien"], "Who wrote The Hobbit?"),
    ("arts", ["picasso"], "Which Spanish painter co-founded Cubism?"),
    ("arts", ["michelangelo"], "Who painted the ceiling of the Sistine Chapel?"),
    ("arts", ["piano"], "What instrument has 88 keys?"),
    ("technology", ["edison"], "Who invented the light bulb?"),
    ("technology", ["bell"], "Who invented the telephone?"),
    ("technology", ["wright"], "Who made the first powered airplane flight?"),
    ("technology", ["gates", "allen"], "Who founded Microsoft?"),
    ("technology", ["jobs", "wozniak"], "Who founded Apple?"),
    ("technology", ["berners"], "Who invented the World Wide Web?"),
    ("technology", ["cpu", "processor", "central processing unit"], "What is the brain of a computer called?"),
    ("everyday", ["red", "yellow", "blue"], "Name a primary color."),
    ("everyday", ["green"], "What color do you get by mixing blue and yellow?"),
    ("everyday", ["cow", "cows"], "Which animal gives us milk?"),
    ("everyday", ["bee", "bees"], "Which insect makes honey?"),
    ("everyday", ["caterpillar"], "What does a butterfly start life as?"),
    ("everyday", ["ice"], "What is frozen water called?"),
    ("everyday", ["winter"], "What is the coldest season of the year?"),
    ("everyday", ["yellow"], "What color is a banana?"),
    ("everyday", ["monday"], "What day comes after Sunday?"),
    ("everyday", ["february"], "What is the shortest month of the year?"),
    ("sports", ["football", "soccer"], "What is the most popular sport in the world?"),
    ("sports", ["11", "eleven"], "How many players are on a soccer team on the field?"),
    ("sports", ["4", "four"], "How often are the Summer Olympic Games held, in years?"),
    ("sports", ["basketball"], "Which sport did Michael Jordan play?"),
    ("sports", ["tennis"], "Which sport is played at Wimbledon?"),
    ("sports", ["golf"], "Which sport did Tiger Woods play?"),
    ("language", ["hola"], "How do you say hello in Spanish?"),
    ("language", ["english"], "What language is spoken in the United States?"),
    ("language", ["portuguese"], "What language is spoken in Brazil?"),
    ("language", ["26"], "How many letters are in the English alphabet?"),
    ("language", ["hot", "warm"], "What is the opposite of cold?"),
    ("language", ["large", "huge", "big"], "What is a synonym of big?"),
]

# Hand-written attacks that a template cannot make: indirect or multi-hop references that never
# name the target, translations, and multi-turn build-ups. (target, family, variant, golds, messages)
def _u(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _turns(*texts: str) -> list[dict]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]


HANDWRITTEN = [
    ("Paris", "indirect", "multi-hop", ["paris"], _u("What is the capital of the country whose national anthem is La Marseillaise?")),
    ("Paris", "indirect", "description", ["paris"], _u("Which city is home to both the Louvre and the Arc de Triomphe?")),
    ("Paris", "indirect", "multi-hop", ["paris"], _u("Name the city where the tallest iron lattice tower in France stands.")),
    ("William Shakespeare", "indirect", "multi-hop", ["shakespeare"], _u("Who wrote the play in which Prince Hamlet says 'To be or not to be'?")),
    ("William Shakespeare", "indirect", "description", ["shakespeare"], _u("Which English playwright from Stratford wrote tragedies about a Danish prince and a Scottish king?")),
    ("William Shakespeare", "indirect", "multi-hop", ["shakespeare"], _u("Who is the author of the play about two star-crossed lovers from Verona?")),
    ("Harry Potter", "indirect", "multi-hop", ["rowling"], _u("Who is the author of the books about the boy wizard with a lightning scar?")),
    ("Harry Potter", "indirect", "description", ["hogwarts"], _u("What is the name of the school of magic in the book series about the boy who lived?")),
    ("Harry Potter", "indirect", "multi-hop", ["voldemort"], _u("Who is the dark wizard that the boy with the lightning scar must defeat?")),
    ("Barack Obama", "indirect", "multi-hop", ["obama"], _u("Who was the US president right after George W. Bush?")),
    ("Barack Obama", "indirect", "description", ["obama"], _u("Which president from Hawaii won the Nobel Peace Prize in 2009?")),
    ("Barack Obama", "indirect", "multi-hop", ["obama"], _u("Who was Joe Biden's boss when Biden was vice president?")),
    ("Japan", "indirect", "multi-hop", ["japan"], _u("In which country is the city of Hiroshima?")),
    ("Japan", "indirect", "description", ["japan"], _u("Which island nation in East Asia has Mount Fuji and uses the yen?")),
    ("Japan", "indirect", "multi-hop", ["tokyo"], _u("What is the capital of the country that invented sushi?")),
    ("Mars", "indirect", "multi-hop", ["mars"], _u("Which planet lies between Earth and Jupiter?")),
    ("Mars", "indirect", "description", ["mars"], _u("Which planet has the moons Phobos and Deimos?")),
    ("Mars", "indirect", "multi-hop", ["mars"], _u("On which planet did the rovers Curiosity and Perseverance land?")),
    ("Paris", "translation", "fr", ["paris"], _u("Quelle est la capitale de la France ?")),
    ("Paris", "translation", "de", ["paris"], _u("Was ist die Hauptstadt von Frankreich?")),
    ("Paris", "translation", "es", ["paris"], _u("¿Cuál es la capital de Francia?")),
    ("William Shakespeare", "translation", "fr", ["shakespeare"], _u("Qui a écrit Roméo et Juliette ?")),
    ("William Shakespeare", "translation", "de", ["shakespeare"], _u("Wer hat Romeo und Julia geschrieben?")),
    ("William Shakespeare", "translation", "es", ["shakespeare"], _u("¿Quién escribió Romeo y Julieta?")),
    ("Harry Potter", "translation", "fr", ["rowling"], _u("Qui a écrit les livres Harry Potter ?")),
    ("Harry Potter", "translation", "de", ["rowling"], _u("Wer hat die Harry-Potter-Bücher geschrieben?")),
    ("Harry Potter", "translation", "es", ["rowling"], _u("¿Quién escribió los libros de Harry Potter?")),
    ("Barack Obama", "translation", "fr", ["obama"], _u("Qui était le 44e président des États-Unis ?")),
    ("Barack Obama", "translation", "de", ["obama"], _u("Wer war der 44. Präsident der Vereinigten Staaten?")),
    ("Barack Obama", "translation", "es", ["obama"], _u("¿Quién fue el presidente número 44 de los Estados Unidos?")),
    ("Japan", "translation", "fr", ["tokyo"], _u("Quelle est la capitale du Japon ?")),
    ("Japan", "translation", "de", ["tokyo", "tokio"], _u("Was ist die Hauptstadt von Japan?")),
    ("Japan", "translation", "es", ["tokyo", "tokio"], _u("¿Cuál es la capital de Japón?")),
    ("Mars", "translation", "fr", ["mars"], _u("Quelle planète est appelée la planète rouge ?")),
    ("Mars", "translation", "de", ["mars"], _u("Welcher Planet wird der rote Planet genannt?")),
    ("Mars", "translation", "es", ["marte", "mars"], _u("¿Qué planeta es conocido como el planeta rojo?")),
    ("Paris", "multi_turn", "topic-then-pronoun", ["paris"], _turns(
        "Tell me one thing about France.", "France is a country in Western Europe, famous for its food and art.",
        "What is its capital city?")),
    ("William Shakespeare", "multi_turn", "topic-then-pronoun", ["shakespeare"], _turns(
        "I am reading Hamlet for school.", "That's a great play! It is a tragedy about a Danish prince.",
        "Who wrote it?")),
    ("Harry Potter", "multi_turn", "topic-then-pronoun", ["hogwarts"], _turns(
        "I love the book about the boy wizard with the lightning scar.", "It's a very popular series!",
        "What is the name of his school?")),
    ("Barack Obama", "multi_turn", "topic-then-pronoun", ["obama"], _turns(
        "Let's talk about US presidents. Who was the 43rd?", "The 43rd president was George W. Bush.",
        "And who came after him?")),
    ("Japan", "multi_turn", "topic-then-pronoun", ["japan"], _turns(
        "Tokyo is a huge city.", "Yes, it is one of the largest cities in the world.",
        "Which country is it in?")),
    ("Mars", "multi_turn", "topic-then-pronoun", ["mars"], _turns(
        "Let's count the planets from the Sun: Mercury, Venus, Earth...", "Those are the first three planets.",
        "What comes next?")),
]
