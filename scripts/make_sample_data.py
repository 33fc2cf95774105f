"""Generate the sample datasets bundled in ``mtl_nlp/sample_data/``.

This script is the source of the bundled sample data; edit it and re-run it
rather than editing the data files by hand. It writes:

* ``ner_train.conll`` / ``ner_dev.conll``: CoNLL-2003 style NER files with
  four columns per token (``token POS chunk NER``), IOB2 chunk and entity tags
  and entity types PER, ORG, LOC and MISC.
* ``sentiment_train.tsv`` / ``sentiment_dev.tsv``: short reviews with a
  ``sentence<TAB>label`` header and ``positive`` / ``negative`` labels.

All sentences are composed from hand-written templates and hand-written name
and phrase lists; no external data is used. Output is deterministic (fixed
random seeds), so re-running the script reproduces the files byte for byte.

Usage (from the repository root)::

    python scripts/make_sample_data.py
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent.parent / "mtl_nlp" / "sample_data"

TRAIN_SEED = 13
DEV_SEED = 29
NER_TRAIN_SIZE = 400
NER_DEV_SIZE = 120
SENTIMENT_TRAIN_SIZE = 400
SENTIMENT_DEV_SIZE = 120
# Every HOLDOUT_EVERY-th name of each list is kept out of the training split so
# that the dev split contains some unseen names.
HOLDOUT_EVERY = 5
MAX_ATTEMPTS = 200

DOCSTART = "-DOCSTART- -X- -X- O"

# A token of a tagged sentence: (word, POS tag, chunk tag, NER tag).
Token = tuple[str, str, str, str]

# ---------------------------------------------------------------------------
# NER: name lists. Each slot maps to (entity type, default POS, names). Name
# tokens are separated by spaces; a token may carry an explicit POS as
# ``word/TAG``. Lowercase "of" / "and" and "&" are tagged IN / CC; a leading
# "the" is tagged DT and kept outside the entity, as in CoNLL-2003.
# ---------------------------------------------------------------------------

# fmt: off
PERSONS = [
    "Anna Lindqvist", "Marco Bellini", "Jean-Pierre Dubois", "Carlos de la Cruz",
    "Hiroshi Tanaka", "Fatima Al-Hassan", "Piotr Nowak", "Sarah O'Connell",
    "David Mensah", "Elena Petrova", "Rahul Mehta", "Ingrid Haugen",
    "Tomas Novak", "Lucia Fernandez", "Kwame Asante", "Mei Chen",
    "Oliver Hartmann", "Sofia Papadopoulos", "James Whitfield", "Amara Okafor",
    "Lars Eriksen", "Yuki Watanabe", "Miguel Santos", "Claire Beaumont",
    "Andrei Volkov", "Grace Mwangi", "Henrik Larsen", "Isabel Moreno",
    "Ahmed Karimi", "Katarzyna Wisniewska", "Pieter van der Berg", "Nadia Rahman",
    "Stefan Kowalski", "Laura Bianchi", "Daniel Okoro", "Helen McAllister",
    "Jorge Ramirez", "Ana Paula Ribeiro", "Thomas Keller", "Emma Gallagher",
    "Viktor Horvath", "Chloe Martin", "Samuel Adeyemi", "Maria Jose Alvarez",
    "Kenji Morimoto", "Beatriz Costa", "Erik Johansson", "Aisha Bello",
    "Patrick Donnelly", "Ludwig von Arnim", "Min-jun Park", "Olga Sorokina",
]

COMPANIES = [
    "Siemens", "Volkswagen", "Nestle", "Toyota", "Unilever", "Airbus",
    "Philips", "Ericsson", "Samsung Electronics", "General Motors",
    "Procter & Gamble", "British Airways", "Rolls-Royce", "Renault", "Heineken",
    "Norland Steel", "Atlas Shipping Group", "Brightwater Energy",
    "Nordic Paper Mills", "Kestrel Pharmaceuticals", "Meridian Telecom",
    "Pacific Rim Holdings", "Alpine Rail Systems", "Sunfield Foods",
]

BANKS = [
    "Deutsche Bank", "Barclays", "HSBC", "UBS", "Goldman Sachs", "BNP Paribas",
    "Morgan Stanley", "Commerzbank", "Nomura", "Santander",
]

CENTRAL_BANKS = [
    "European Central Bank", "Federal Reserve", "Bank of England",
    "Bank of Japan", "Swiss National Bank", "Reserve Bank of Australia",
    "Bank of Canada",
]

INSTITUTIONS = [
    "United Nations", "World Health Organization", "European Commission",
    "African Union", "International Atomic Energy Agency", "Council of Europe",
    "World Trade Organization", "Arab League", "Organization of American States",
]

AID_AGENCIES = [
    "Red Cross", "World Food Programme", "International Rescue Committee",
    "UN Refugee Agency", "Norwegian Refugee Council", "Danish Refugee Council",
]

ECONOMIC_BODIES = [
    "International Monetary Fund", "World Bank", "Food and Agriculture Organization",
    "Asian Development Bank", "African Development Bank", "OECD",
]

PARTIES = [
    "Labour Party", "Social Democratic Party", "Christian Democratic Union",
    "Green Party", "Liberal Democrats", "Conservative Party", "Democratic Party",
    "Republican Party", "National Party", "Freedom Party", "Socialist Party",
    "Centre Party",
]

CLUBS = [
    "Bayern Munich", "Real Madrid", "Manchester United", "Ajax Amsterdam",
    "Juventus", "Barcelona", "Borussia Dortmund", "AC Milan",
    "Paris Saint-Germain", "Celtic", "Benfica", "Porto", "Galatasaray",
    "Liverpool", "Inter Milan", "Sporting Lisbon", "Feyenoord",
    "Olympique Marseille", "Anderlecht", "Boca Juniors", "River Plate",
]

MEDIA = [
    "Reuters", "Bloomberg", "Le Monde", "Der Spiegel", "El Pais", "Al Jazeera",
    "Xinhua", "Kyodo", "Corriere della Sera", "Asahi Shimbun",
]

UNIVERSITIES = [
    "Harvard University", "the University of Oxford", "Stanford University",
    "the University of Tokyo", "ETH Zurich", "Imperial College London",
    "the University of Cape Town", "McGill University", "the Karolinska Institute",
    "Humboldt University", "the University of Melbourne", "Seoul National University",
]

CITIES = [
    "New York", "London", "Paris", "Berlin", "Munich", "Frankfurt", "Tokyo",
    "Madrid", "Rome", "Vienna", "Geneva", "Brussels", "Moscow", "Beijing",
    "Hong Kong", "Sydney", "Cairo", "Nairobi", "Johannesburg", "Buenos Aires",
    "Rio de Janeiro", "Sao Paulo", "Mexico City", "Los Angeles", "Toronto",
    "Mumbai", "New Delhi", "Istanbul", "Stockholm", "Warsaw", "Lisbon", "Seoul",
    "Singapore", "Dublin", "Amsterdam", "Athens", "Lagos", "Manchester",
    "Milan", "San Francisco", "Kuala Lumpur", "St. Petersburg",
]

COUNTRIES = [
    "Germany", "France", "Brazil", "Argentina", "Japan", "China", "India",
    "Italy", "Spain", "the U.S.", "the United States", "Britain", "Russia", "Mexico",
    "Canada", "Australia", "South Africa", "Nigeria", "Kenya", "Egypt", "Turkey",
    "Poland", "Sweden", "Norway", "South Korea", "Portugal", "Chile",
    "Colombia", "New Zealand", "Ireland", "Greece", "Indonesia", "Vietnam",
    "Ghana", "the Netherlands", "Morocco", "the Philippines", "Belgium", "Switzerland", "Austria", "Denmark",
    "Croatia", "Uruguay",
]

PROVINCES = [
    "Bavaria", "California", "Catalonia", "Quebec", "Scotland", "Tuscany",
    "Ontario", "Queensland", "Punjab", "Texas", "Lombardy", "Saxony",
    "Andalusia", "Flanders",
]

REMOTE_REGIONS = [
    "Siberia", "Patagonia", "Antarctica", "Greenland", "Alaska", "Borneo",
    "Tasmania", "Sumatra", "Hokkaido", "Anatolia", "Mindanao",
]

RIVERS = [
    "Danube", "Rhine", "Thames", "Seine", "Nile", "Hudson", "Elbe", "Volga",
    "Mekong", "Tagus",
]

NATIONALITIES = [
    "German", "French", "British", "Japanese", "Brazilian", "Italian", "Spanish",
    "Chinese", "Indian", "Russian", "Mexican", "Canadian", "Australian",
    "Swedish", "Polish", "Dutch", "Nigerian", "Kenyan", "Egyptian", "Turkish",
    "Argentine", "South Korean", "Irish", "Greek", "Portuguese", "Norwegian",
    "American", "Danish",
]

LANGUAGES = [
    "English", "Arabic", "Japanese", "Spanish", "Mandarin", "Swahili",
    "Portuguese", "Hindi", "Russian", "German", "French", "Korean", "Turkish",
    "Polish",
]

CUPS = [
    "World Cup", "Copa America", "African Nations Cup", "European Championship",
    "Gold Cup", "Asian Cup",
]

LEAGUES = [
    "Champions League", "Europa League", "Bundesliga", "Premier League",
    "Serie A", "La Liga", "Eredivisie", "Ligue 1",
]

GAMES = [
    "Olympic Games", "Paralympic Games", "World Championships",
    "World Athletics Championships", "World Indoor Championships",
    "Youth Olympic Games",
]

CYCLING_TOURS = [
    "Tour de France", "Giro d'Italia", "Tour de Suisse", "Paris-Nice",
    "Criterium du Dauphine",
]

TENNIS_EVENTS = [
    "Australian Open", "French Open", "U.S. Open", "Italian Open",
    "Madrid Open", "Canadian Open",
]

MARATHONS = [
    "Boston Marathon", "London Marathon", "Berlin Marathon", "Chicago Marathon",
    "Tokyo Marathon",
]

BOOK_AWARDS = [
    "Nobel Prize", "Booker Prize", "Pulitzer Prize", "Prix Goncourt",
    "Cervantes Prize", "Hugo Award",
]

SPORT_AWARDS = ["Ballon d'Or", "Golden Boot", "Golden Ball"]

FESTIVALS = [
    "Cannes Film Festival", "Venice Film Festival", "Berlinale",
    "Toronto International Film Festival", "Sundance Film Festival",
    "Edinburgh Festival",
]

# fmt: on

ENTITY_SLOTS: dict[str, tuple[str, str, list[str]]] = {
    "PER": ("PER", "NNP", PERSONS),
    "CO": ("ORG", "NNP", COMPANIES),
    "BANK": ("ORG", "NNP", BANKS),
    "CENTRAL": ("ORG", "NNP", CENTRAL_BANKS),
    "INST": ("ORG", "NNP", INSTITUTIONS),
    "AID": ("ORG", "NNP", AID_AGENCIES),
    "ECON": ("ORG", "NNP", ECONOMIC_BODIES),
    "PARTY": ("ORG", "NNP", PARTIES),
    "CLUB": ("ORG", "NNP", CLUBS),
    "MEDIA": ("ORG", "NNP", MEDIA),
    "UNIV": ("ORG", "NNP", UNIVERSITIES),
    "CITY": ("LOC", "NNP", CITIES),
    "COUNTRY": ("LOC", "NNP", COUNTRIES),
    "PROVINCE": ("LOC", "NNP", PROVINCES),
    "REMOTE": ("LOC", "NNP", REMOTE_REGIONS),
    "RIVER": ("LOC", "NNP", RIVERS),
    "NAT": ("MISC", "JJ", NATIONALITIES),
    "LANG": ("MISC", "NNP", LANGUAGES),
    "CUP": ("MISC", "NNP", CUPS),
    "LEAGUE": ("MISC", "NNP", LEAGUES),
    "GAMES": ("MISC", "NNP", GAMES),
    "TOUR": ("MISC", "NNP", CYCLING_TOURS),
    "TENNIS": ("MISC", "NNP", TENNIS_EVENTS),
    "MARATHON": ("MISC", "NNP", MARATHONS),
    "AWARD": ("MISC", "NNP", BOOK_AWARDS),
    "SPORTAWARD": ("MISC", "NNP", SPORT_AWARDS),
    "FESTIVAL": ("MISC", "NNP", FESTIVALS),
}

# fmt: off
PLURAL_NAME_TOKENS = {
    "Nations", "States", "Games", "Democrats", "Championships", "Mills",
    "Holdings", "Systems", "Foods", "Pharmaceuticals", "Airways", "Motors",
    "Juniors", "Electronics",
}
SURNAME_PARTICLES = {"de", "la", "van", "der", "von"}
# fmt: on

# ---------------------------------------------------------------------------
# NER: non-entity fillers. Each returns space-separated tokens.
# ---------------------------------------------------------------------------

# fmt: off
DAYS = [
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
]
MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
]
STAGE_ORDINALS = [
    "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
    "tenth", "12th", "15th", "18th",
]
DISTANCES = ["100", "200", "400", "800", "1,500", "5,000", "10,000"]
JOB_COUNTS = [
    "120", "250", "400", "600", "850", "1,200", "1,500", "2,000", "3,400", "5,000",
]
SMALL_NUMBER_WORDS = ["two", "three", "four", "five", "six", "several"]
LANGUAGE_COUNTS = ["12", "15", "20", "25", "30", "40"]
WINNING_SETS = ["6-4", "6-3", "6-2", "7-5", "7-6", "6-1"]
LOSING_SETS = ["4-6", "3-6", "6-7", "5-7"]
# fmt: on


def ordinal(number: int) -> str:
    """Return ``number`` as a digit ordinal such as ``61st`` or ``87th``."""
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{'th' if 10 <= number % 100 <= 20 else suffix}"


def money_amount(rng: random.Random) -> str:
    """Return an amount such as ``1.4 billion`` or ``350 million``."""
    if rng.random() < 0.5:
        return f"{rng.randint(1, 9)}.{rng.randint(1, 9)} billion"
    return f"{rng.randrange(100, 1000, 10)} million"


def football_score(rng: random.Random) -> str:
    """Return a winning football score such as ``2-1``."""
    winner = rng.randint(1, 4)
    return f"{winner}-{rng.randint(0, winner - 1)}"


def draw_score(rng: random.Random) -> str:
    """Return a drawn football score such as ``1-1``."""
    goals = rng.randint(0, 3)
    return f"{goals}-{goals}"


def tennis_score(rng: random.Random) -> str:
    """Return a straight-sets or three-set tennis score, winner first."""
    sets = [rng.choice(WINNING_SETS), rng.choice(WINNING_SETS)]
    if rng.random() < 0.4:
        sets.insert(1, rng.choice(LOSING_SETS))
    return " ".join(sets)


FILLERS: dict[str, Callable[[random.Random], str]] = {
    "DAY": lambda rng: rng.choice(DAYS),
    "MONTH": lambda rng: rng.choice(MONTHS),
    "YEAR": lambda rng: str(rng.randint(1995, 2019)),
    "FUTUREYEAR": lambda rng: str(rng.randint(2027, 2036)),
    "JOBS": lambda rng: rng.choice(JOB_COUNTS),
    "MONEY": money_amount,
    "PCT": lambda rng: f"{rng.randint(1, 9)}.{rng.randint(1, 9)}",
    "SCORE": football_score,
    "DRAW": draw_score,
    "SETS": tennis_score,
    "STAGE": lambda rng: rng.choice(STAGE_ORDINALS),
    "DIST": lambda rng: rng.choice(DISTANCES),
    "MINUTES": lambda rng: str(rng.randint(4, 40)),
    "LATEMINUTE": lambda rng: ordinal(rng.randint(60, 89)),
    "TEMP": lambda rng: str(rng.randint(35, 46)),
    "MAG": lambda rng: f"{rng.randint(4, 6)}.{rng.randint(0, 9)}",
    "PRICE": lambda rng: f"{rng.randint(60, 95)}.{rng.randint(10, 99)}",
    "FEW": lambda rng: rng.choice(SMALL_NUMBER_WORDS),
    "LANGCOUNT": lambda rng: rng.choice(LANGUAGE_COUNTS),
}

# ---------------------------------------------------------------------------
# NER: sentence templates, grouped by news topic (one topic per document).
# Chunks are separated by " | "; a chunk may start with a forced chunk label
# such as "SBAR:" or "NP:", otherwise the label is inferred from the POS tags.
# "{SLOT}" is an entity or filler slot, "{SLOT#2}" a second, different draw,
# and "{SURNAME}" the surname of a person. "word/TAG" overrides the lexicon.
# ---------------------------------------------------------------------------

POLITICS_TEMPLATES = [
    "{PER} | met | executives | of | {CO} | in | {CITY} | on | {DAY} | .",
    "{NAT} Foreign/NNP Minister/NNP {PER} | arrived | in | {CITY} | on | {DAY} | "
    "for | talks | with | {NAT#2} officials | .",
    "{COUNTRY} | will hold | parliamentary elections | in | {MONTH} | , | the electoral commission | said | .",
    "{PER} | , | leader | of | the {PARTY} | , | said | the government | had failed | to tackle | NP:rising prices | .",
    "The {INST} | said | on | {DAY} | it | would send/VB | a team | of | experts | to | {COUNTRY} | .",
    "Talks | between | {COUNTRY} and {COUNTRY#2} | ended | in | {CITY} | without | an agreement | .",
    "{PER} | told | {MEDIA} | SBAR:that | the {NAT} government | would not change | its policy | .",
    "Prime/NNP Minister/NNP {PER} | flew | to | {CITY} | on | {DAY} | to attend | "
    "a summit | of | {NAT} and {NAT#2} leaders | .",
    '" | We | are | ready | to negotiate | , | " | {PER} | told | reporters | in | {CITY} | .',
    "{PER} | , | {COUNTRY} | 's chief negotiator | , | said | a deal | could be reached | by | {MONTH} | .",
    "The {PARTY} | won | {PCT} percent | of | the vote | in | {PROVINCE} | .",
    "Thousands | of | people | marched | through | central {CITY} | on | {DAY} | "
    "to protest | against | the new tax | .",
    "{SURNAME} | , | who | has led | the {PARTY} | since | {YEAR} | , | is expected/VBN to stand | down/RP | .",
    "The {INST} | opened/VBD | a regional office | in | {CITY} | on | {DAY} | .",
    "{NAT} President/NNP {PER} | will visit | {COUNTRY} | in | {MONTH} | , | a spokesperson | said | .",
    "The {PROVINCE} regional government | approved | the budget | on | {DAY} | .",
    "The government | denied | the reports | on | {DAY} | .",
    "The talks | are expected/VBN to resume | on | {DAY} | .",
    "Parliament | will vote/VB | on | the bill | in | {MONTH} | .",
]

BUSINESS_TEMPLATES = [
    "Shares | in | {CO} | rose | {PCT} percent | on | {DAY} | SBAR:after | the company | reported | higher profits | .",
    "{CO} | said | on | {DAY} | it | would cut/VB | {JOBS} jobs | in | {COUNTRY} | .",
    "The {CENTRAL} | left | interest rates | unchanged | at | its meeting | on | {DAY} | .",
    "{CO} | agreed | to buy | {NAT} rival {CO#2} | for | $ {MONEY} | .",
    "{PER} | , | chief executive | of | {CO} | , | told | {MEDIA} | the company | "
    "expected/VBD | strong demand | in | {COUNTRY} | .",
    "{CO} | 's net profit | rose | to | $ {MONEY} | in | the first quarter | .",
    "The {CITY} stock market | closed | lower | on | {DAY} | .",
    "{CO} | will open | a new factory | near | {CITY} | next year | , | creating | {JOBS} jobs | .",
    "Economists | at | {BANK} | expect | the {CENTRAL} | to raise | interest rates | in | {MONTH} | .",
    "{BANK} | cut/VBD | its growth forecast | for | {COUNTRY} | to | {PCT} percent | .",
    "{PER} | will take | over/RP | as | chairman | of | {CO} | in | {MONTH} | , | the company | said | .",
    "{NAT} regulators | approved | the merger | of | {CO} and {CO#2} | on | {DAY} | .",
    "Trading | on | the {CITY} stock exchange | was | quiet | ahead | of | the holiday | .",
    "{PER} | , | an analyst | at | {BANK} | in | {CITY} | , | said | the figures | "
    "were | better | than | expected/VBN | .",
    "Shares | fell | {PCT} percent | in | early trading | on | {DAY} | .",
    "The company | did not disclose | the terms | of | the deal | .",
    "Oil prices | rose | to | $ {PRICE} | a barrel | on | {DAY} | .",
]

SPORTS_TEMPLATES = [
    "{COUNTRY} | beat | {COUNTRY#2} | {SCORE} | in | the {CUP} final | .",
    "{CLUB} | drew | {DRAW} | with | {CLUB#2} | in | the {LEAGUE} | on | {DAY} | .",
    "{PER} | scored | twice | SBAR:as | {CLUB} | beat | {CLUB#2} | {SCORE} | .",
    "{NAT} striker/NN {PER} | has signed | a three-year contract | with | {CLUB} | .",
    "{PER} | won | the gold medal | in | the {DIST} metres | at | the {GAMES} | in | {CITY} | .",
    "{PER} | of | {COUNTRY} | won | the {STAGE} stage | of | the {TOUR} | on | {DAY} | .",
    "{PER} | beat | {PER#2} | {SETS} | in | the first round | of | the {TENNIS} | .",
    "Results | of | {NAT} first division matches | played | on | {DAY} | :",
    "{CLUB} coach/NN {PER} | was sacked | on | {DAY} | after | a run | of | five defeats | .",
    "{PER} | set/VBD | a course record | to win | the {MARATHON} | on | {DAY} | .",
    "{COUNTRY} | have named | an unchanged side | for | {DAY} | 's match | against | {COUNTRY#2} | in | {CITY} | .",
    "{PER} | , | who | won | the {SPORTAWARD} | in | {YEAR} | , | will miss | "
    "the rest | of | the season | with | a knee injury | .",
    "{SURNAME} | , | who | joined | {CLUB} | from | {CLUB#2} | last season | , | "
    "scored | the winner | in | the {LATEMINUTE} minute | .",
    "{NAT} champion/NN {PER} | retained | the title | in | {CITY} | on | {DAY} | .",
    "{COUNTRY} | will host | the {GAMES} | in | {FUTUREYEAR} | .",
    "The match | was abandoned | after | {MINUTES} minutes | because of | heavy rain | .",
    "The visitors | took | the lead | after | {MINUTES} minutes | .",
]

WORLD_TEMPLATES = [
    "Flights | between | {CITY} and {CITY#2} | were cancelled | because of | "
    "a strike | by | air traffic controllers | .",
    "The {AWARD} | was awarded | to | {NAT} writer/NN {PER} | on | {DAY} | .",
    "Researchers | at | {UNIV} | said | on | {DAY} | they | had developed | a cheaper test | for | malaria | .",
    "The {FESTIVAL} | opens | on | {DAY} | with | a new {NAT} film | .",
    "{PER} | , | a spokesperson | for | the {AID} | , | said | aid | would reach | {REMOTE} | within | days | .",
    "Temperatures | in | {CITY} | reached/VBD | {TEMP} degrees Celsius/NNP | on | {DAY} | .",
    "The novel | has been translated | into | {LANGCOUNT} languages | , | PP:including | {LANG} and {LANG#2} | .",
    "The number | of | {NAT} tourists | visiting | {COUNTRY} | rose | by | {PCT} percent | last year | .",
    "A new bridge | over | the {RIVER} | was opened/VBN | on | {DAY} | .",
    "A magnitude/NN {MAG} earthquake | struck | {REMOTE} | on | {DAY} | , | but | "
    "there | were | no reports | of | damage | .",
    "{PER} | will give | a lecture | at | {UNIV} | next month | .",
    "The {ECON} | has warned | SBAR:that | food prices | could rise | sharply | in | {COUNTRY} | .",
    "{NAT} and {NAT#2} scientists | will lead | a joint expedition | to | {REMOTE} | .",
    "{MEDIA} | reported | on | {DAY} | SBAR:that | the national museum | in | {CITY} | would reopen | in | {MONTH} | .",
    "{PER} | , | who | won | the {AWARD} | in | {YEAR} | , | will publish | a new novel | in | {MONTH} | .",
    "A study | by | {UNIV} | found | SBAR:that | {NAT} teenagers | sleep | less | than | their parents | .",
    "Water levels | on | the {RIVER} | rose | sharply | after | {FEW} days | of | heavy rain | .",
    "Police | said | the fire | was brought | under | control | after | {FEW} hours | .",
    "Heavy snow | closed | {FEW} roads | in | the north | on | {DAY} | .",
]

NER_TOPICS = [
    POLITICS_TEMPLATES,
    BUSINESS_TEMPLATES,
    SPORTS_TEMPLATES,
    WORLD_TEMPLATES,
]

# Penn Treebank tags of the template words: one line per tag.
LEXICON_TEXT = """
CC and but
CD billion million five two three four six
DT the a an no
EX there
IN of in on for with between without by through against since at after near
IN as than from because over within into under that
JJ parliamentary electoral new central regional chief strong net first next
JJ unchanged quiet three-year last cheaper joint national heavy ready several
JJ early second third fourth fifth sixth seventh eighth ninth tenth
JJR higher better
MD will would could
NN commission government leader team agreement policy deal percent vote tax
NN office spokesperson budget bill company interest meeting rival demand
NN profit quarter stock market factory year growth forecast chairman merger
NN exchange holiday analyst trading oil barrel final striker contract gold
NN medal stage round division coach run course record side match rest season
NN knee injury winner minute champion title lead strike air traffic writer
NN test malaria film aid number bridge earthquake damage lecture month food
NN expedition museum novel study fire control snow north rain executive
NN negotiator summit water
NNP parliament monday tuesday wednesday thursday friday saturday sunday
NNP january february march april may june july august september october
NNP november december
NNS executives talks officials elections prices experts leaders reporters
NNS thousands people reports shares profits jobs rates economists regulators
NNS figures terms metres results matches defeats minutes visitors flights
NNS controllers researchers days temperatures degrees languages tourists
NNS scientists teenagers parents levels hours roads police
POS 's '
PRP it we they
PRP$ its their
RB not twice ahead sharply
RBR lower less
RP down
TO to
VB hold tackle send change attend negotiate be stand resume buy open raise
VB take disclose win miss host give reach rise reopen publish protest visit
VBD met arrived said ended told flew won marched approved denied rose reported
VBD left agreed closed fell did beat drew scored joined retained took struck
VBD found had was were
VBG rising creating visiting including
VBN failed reached led signed named sacked played abandoned cancelled awarded
VBN developed been translated warned brought
VBP are expect have sleep
VBZ has is opens
WP who
"""

PUNCTUATION_TAGS = {",", ".", ":", '"', "$"}
CHUNK_LABEL_RE = re.compile(r"^(NP|VP|PP|SBAR|ADVP|ADJP|PRT):(.+)$")
SLOT_RE = re.compile(r"^\{([A-Z]+)(?:#\d)?\}$")
TAGGED_WORD_RE = re.compile(r"^(.+)/([A-Z$]+)$")
NUMBER_RE = re.compile(r"^\d[\d.,-]*$")
ORDINAL_RE = re.compile(r"^\d+(st|nd|rd|th)$")


def parse_lexicon(text: str) -> dict[str, str]:
    """Parse ``TAG word word ...`` lines into a word -> POS tag mapping."""
    lexicon: dict[str, str] = {}
    for line in text.strip().splitlines():
        tag, *words = line.split()
        for word in words:
            if lexicon.get(word, tag) != tag:
                raise ValueError(f"conflicting tags for {word!r}")
            lexicon[word] = tag
    return lexicon


LEXICON = parse_lexicon(LEXICON_TEXT)


def pos_tag(word: str) -> tuple[str, str]:
    """Return ``(word, POS)`` for a template or filler token.

    An explicit ``word/TAG`` wins; numbers are CD, digit ordinals JJ,
    punctuation is tagged with itself and anything else comes from the
    lexicon.
    """
    match = TAGGED_WORD_RE.match(word)
    if match:
        return match.group(1), match.group(2)
    if word in PUNCTUATION_TAGS:
        return word, word
    if NUMBER_RE.match(word):
        return word, "CD"
    if ORDINAL_RE.match(word):
        return word, "JJ"
    try:
        return word, LEXICON[word.lower()]
    except KeyError:
        raise ValueError(f"no POS tag for template word {word!r}") from None


def name_tokens(name: str, default_pos: str) -> list[tuple[str, str]]:
    """Split a name into ``(word, POS)`` pairs."""
    tokens = []
    for word in name.split():
        match = TAGGED_WORD_RE.match(word)
        if match:
            tokens.append((match.group(1), match.group(2)))
        elif word == "the":
            tokens.append((word, "DT"))
        elif word == "of":
            tokens.append((word, "IN"))
        elif word in ("and", "&"):
            tokens.append((word, "CC"))
        elif word in PLURAL_NAME_TOKENS:
            tokens.append((word, "NNPS"))
        else:
            tokens.append((word, default_pos))
    return tokens


def surname(name: str) -> str:
    """Return the surname of a full name, keeping particles like ``van der``."""
    words = name.split()
    start = len(words) - 1
    while start > 1 and words[start - 1] in SURNAME_PARTICLES:
        start -= 1
    return " ".join(words[start:])


def split_names(names: list[str], split: str) -> list[str]:
    """Return the names usable in ``split``; train skips the held-out names."""
    if split == "dev":
        return list(names)
    return [n for i, n in enumerate(names) if i % HOLDOUT_EVERY != HOLDOUT_EVERY - 1]


def infer_chunk_label(tags: list[str]) -> str:
    """Guess the chunk type of a template chunk from its POS tags."""
    if all(tag in PUNCTUATION_TAGS - {"$"} for tag in tags) or tags == ["CC"]:
        return "O"
    if any(tag.startswith("VB") or tag == "MD" for tag in tags):
        return "VP"
    if tags[0] in ("IN", "TO"):
        return "PP"
    if tags == ["RP"]:
        return "PRT"
    if all(tag in ("RB", "RBR", "RBS") for tag in tags):
        return "ADVP"
    if all(tag in ("JJ", "JJR", "JJS") for tag in tags):
        return "ADJP"
    return "NP"


def chunk_tags(tags: list[str], label: str) -> list[str]:
    """Return IOB2 chunk tags for one template chunk.

    Noun phrases containing a preposition (``Bank of England``) are split
    into NP, PP and NP chunks as in CoNLL-2003.
    """
    if label == "O":
        return ["O"] * len(tags)
    result = []
    begin = True
    for tag in tags:
        if label == "NP" and tag == "IN":
            result.append("B-PP")
            begin = True
            continue
        result.append(("B-" if begin else "I-") + label)
        begin = False
    return result


class NerSentenceBuilder:
    """Fill NER templates with names and fillers for one data split."""

    def __init__(self, split: str, rng: random.Random) -> None:
        """Prepare the name pools of ``split`` ("train" or "dev")."""
        self.rng = rng
        self.pools = {slot: split_names(names, split) for slot, (_, _, names) in ENTITY_SLOTS.items()}

    def _draw_name(self, slot: str, used: set[str]) -> str:
        """Draw a name for ``slot`` not yet used in the current sentence."""
        name = self.rng.choice(self.pools[slot])
        while name in used:
            name = self.rng.choice(self.pools[slot])
        used.add(name)
        return name

    def _expand(self, piece: str, used: set[str]) -> list[tuple[str, str, str]]:
        """Expand one template piece into ``(word, POS, NER)`` triples."""
        match = SLOT_RE.match(piece)
        if not match:
            return [(*pos_tag(piece), "O")]
        slot = match.group(1)
        if slot in FILLERS:
            words = FILLERS[slot](self.rng).split()
            return [(*pos_tag(word), "O") for word in words]
        if slot == "SURNAME":
            name, entity_type, default_pos = surname(self._draw_name("PER", used)), "PER", "NNP"
        else:
            entity_type, default_pos, _ = ENTITY_SLOTS[slot]
            name = self._draw_name(slot, used)
        triples = []
        for word, pos in name_tokens(name, default_pos):
            if pos == "DT":
                triples.append((word, pos, "O"))
            else:
                prefix = "I-" if triples and triples[-1][2] != "O" else "B-"
                triples.append((word, pos, prefix + entity_type))
        return triples

    def build(self, template: str) -> list[Token]:
        """Realise ``template`` as a list of CoNLL tokens."""
        used: set[str] = set()
        sentence: list[Token] = []
        for chunk in template.split(" | "):
            forced = CHUNK_LABEL_RE.match(chunk)
            label = forced.group(1) if forced else None
            body = forced.group(2) if forced else chunk
            triples = [t for piece in body.split() for t in self._expand(piece, used)]
            tags = [pos for _, pos, _ in triples]
            chunks = chunk_tags(tags, label or infer_chunk_label(tags))
            sentence.extend(
                (word, pos, chunk_tag, ner) for (word, pos, ner), chunk_tag in zip(triples, chunks, strict=True)
            )
        return polish(sentence)


def polish(sentence: list[Token]) -> list[Token]:
    """Capitalise the first word and write ``'s`` as ``'`` after a final s."""
    result = []
    for i, (word, pos, chunk, ner) in enumerate(sentence):
        if i == 0:
            word = word[0].upper() + word[1:]
        elif word == "'s" and sentence[i - 1][0].endswith("s"):
            word = "'"
        result.append((word, pos, chunk, ner))
    return result


def sentence_key(tokens: list[Token]) -> str:
    """Return the surface string of a tagged sentence."""
    return " ".join(token[0] for token in tokens)


def generate_ner(split: str, seed: int, size: int, exclude: set[str]) -> list[list[list[Token]]]:
    """Generate ``size`` unique sentences grouped into topical documents.

    Each document draws its templates from one topic, cycling through them in
    random order so that a document rarely repeats a sentence pattern.
    Sentences whose surface form is in ``exclude`` (or already generated)
    are redrawn; every accepted sentence is added to ``exclude``.
    """
    rng = random.Random(seed)
    builder = NerSentenceBuilder(split, rng)
    documents: list[list[list[Token]]] = []
    count = 0
    while count < size:
        topic = rng.choice(NER_TOPICS)
        queue: list[str] = []
        length = min(rng.randint(8, 24), size - count)
        document = []
        while len(document) < length:
            for _ in range(MAX_ATTEMPTS):
                if not queue:
                    queue = rng.sample(topic, len(topic))
                tokens = builder.build(queue.pop())
                key = sentence_key(tokens)
                if key not in exclude:
                    break
            else:
                raise RuntimeError("could not draw a new unique sentence")
            exclude.add(key)
            document.append(tokens)
        documents.append(document)
        count += length
    return documents


def format_conll(documents: list[list[list[Token]]]) -> str:
    """Render documents in CoNLL-2003 format with ``-DOCSTART-`` separators."""
    lines = []
    for document in documents:
        lines.extend([DOCSTART, ""])
        for sentence in document:
            lines.extend(" ".join(token) for token in sentence)
            lines.append("")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Sentiment: review phrases. "{s}" is the reviewed thing. Negated phrases
# ("not bad at all", "hardly worth the price") keep an unambiguous polarity.
# ---------------------------------------------------------------------------

GENERIC_VERDICTS = {
    "positive": [
        "{s} is worth every penny",
        "{s} exceeded all my expectations",
        "I would happily recommend {s} to anyone",
        "{s} was a wonderful surprise",
        "{s} deserves all the praise it gets",
        "{s} is a genuine gem",
        "{s} was not bad at all",
        "{s} did not disappoint",
        "I have no complaints about {s}",
        "there is nothing I would change about {s}",
        "I could not find a single fault with {s}",
        "I was not expecting much, but {s} blew me away",
        "{s} is excellent value for money",
        "I am delighted with {s}",
        "{s} is every bit as good as people say",
        "{s} more than lived up to the hype",
    ],
    "negative": [
        "{s} is a complete waste of money",
        "{s} was a huge disappointment",
        "I regret choosing {s}",
        "{s} was a total letdown",
        "{s} is overpriced and underwhelming",
        "I would avoid {s} at all costs",
        "{s} was frustrating in every way",
        "{s} is hardly worth the price",
        "{s} did not live up to the hype",
        "I would not recommend {s} to anyone",
        "{s} is not worth your time",
        "nothing about {s} worked for me",
        "I am really unhappy with {s}",
        "there is nothing to like about {s}",
        "{s} is far worse than the reviews suggest",
        "I wish I had never chosen {s}",
    ],
}

# fmt: off
REVIEW_DOMAINS: dict[str, dict[str, list[str]]] = {
    "film": {
        "subjects": [
            "the film", "this movie", "the sequel", "the documentary",
            "this thriller", "the new comedy", "the animated feature",
            "this period drama", "the remake",
        ],
        "contexts": [
            "I watched {s} last night",
            "We saw {s} at the cinema on Friday",
            "My partner and I streamed {s} over the weekend",
            "I finally caught {s} on a long flight",
        ],
        "positive": [
            "the acting was superb",
            "the script was sharp and genuinely funny",
            "the cinematography was gorgeous",
            "the soundtrack was wonderful",
            "the final act kept me on the edge of my seat",
            "every performance felt honest and moving",
            "the pacing was perfect",
            "the lead gave a career-best performance",
            "the twist was not predictable at all",
        ],
        "negative": [
            "the plot made no sense",
            "the dialogue was wooden",
            "the jokes fell completely flat",
            "it dragged on for far too long",
            "the ending was a lazy cop-out",
            "the acting was painfully stiff",
            "the special effects looked cheap",
            "I nearly fell asleep halfway through",
            "the characters were not remotely believable",
        ],
        "positive_verdicts": [
            "I would watch {s} again tomorrow",
            "I loved every minute of {s}",
        ],
        "negative_verdicts": [
            "I walked out of {s} after an hour",
            "{s} felt twice as long as it was",
        ],
    },
    "restaurant": {
        "subjects": [
            "this restaurant", "the bistro", "the new sushi place",
            "this little cafe", "the steakhouse", "the pizzeria",
            "this tapas bar", "the vegetarian diner",
        ],
        "contexts": [
            "We had dinner at {s} on Saturday",
            "I took my parents to {s} for lunch",
            "We tried {s} after reading the reviews",
            "A friend booked a table at {s} for my birthday",
        ],
        "positive": [
            "the food was delicious",
            "the staff were friendly and attentive",
            "the portions were generous",
            "the desserts were out of this world",
            "the service was quick and warm",
            "every dish arrived hot and beautifully presented",
            "the wine list was excellent",
            "the prices were very reasonable",
            "the wait for a table was not long at all",
        ],
        "negative": [
            "the food was cold and bland",
            "the waiter was rude",
            "we waited over an hour for our main course",
            "the portions were tiny for the price",
            "the tables were sticky and dirty",
            "the fish tasted stale",
            "the bill included dishes we never ordered",
            "the service was painfully slow",
            "nobody bothered to check on us",
        ],
        "positive_verdicts": [
            "I cannot wait to go back to {s}",
            "{s} is our new favourite place to eat",
        ],
        "negative_verdicts": [
            "we will never eat at {s} again",
            "{s} is not worth the long wait for a table",
        ],
    },
    "hotel": {
        "subjects": [
            "the hotel", "this resort", "the guesthouse", "the seaside inn",
            "this boutique hotel", "the airport hotel", "this bed and breakfast",
        ],
        "contexts": [
            "We stayed at {s} for three nights",
            "I booked {s} for a work trip",
            "We spent our honeymoon at {s}",
            "My family stayed at {s} over Easter",
        ],
        "positive": [
            "our room was spotless",
            "the bed was incredibly comfortable",
            "the staff went out of their way to help",
            "the breakfast buffet was superb",
            "the view from the balcony was stunning",
            "the location was perfect for exploring the city",
            "check-in took less than five minutes",
            "the pool area was clean and relaxing",
            "the noise from the street was not a problem at all",
        ],
        "negative": [
            "our room was filthy",
            "the air conditioning did not work",
            "the walls were so thin we barely slept",
            "the receptionist was unhelpful and rude",
            "the bathroom smelled of damp",
            "breakfast was overpriced and stale",
            "the wifi kept dropping out",
            "there were stains on the sheets",
            "nobody came to fix the broken shower",
        ],
        "positive_verdicts": [
            "we would gladly stay at {s} again",
            "{s} felt like a home away from home",
        ],
        "negative_verdicts": [
            "I would never stay at {s} again",
            "{s} looks nothing like the photos online",
        ],
    },
    "book": {
        "subjects": [
            "this novel", "the book", "the memoir", "the biography",
            "this short story collection", "the debut novel", "this crime novel",
        ],
        "contexts": [
            "I read {s} on holiday",
            "Our book club picked {s} this month",
            "I borrowed {s} from the library",
            "I finished {s} over the weekend",
        ],
        "positive": [
            "the characters were vivid and believable",
            "the writing was elegant",
            "the story gripped me from the first page",
            "the ending was deeply moving",
            "the research behind it was impressive",
            "the dialogue felt natural and witty",
            "every chapter left me wanting more",
            "the translation read beautifully",
        ],
        "negative": [
            "the characters were flat",
            "the prose was clumsy and repetitive",
            "the plot was painfully predictable",
            "the middle section dragged badly",
            "the ending felt rushed",
            "it was full of typos",
            "the dialogue was stiff and unnatural",
            "the story never really went anywhere",
        ],
        "positive_verdicts": [
            "I could not put {s} down",
            "{s} stayed with me long after the last page",
        ],
        "negative_verdicts": [
            "I gave up on {s} after fifty pages",
            "{s} was a chore to finish",
        ],
    },
    "gadget": {
        "subjects": [
            "this laptop", "the tablet", "this phone", "the smartwatch",
            "the e-reader", "this camera", "the wireless speaker",
        ],
        "contexts": [
            "I bought {s} last month",
            "I have been using {s} for a few weeks",
            "I ordered {s} online",
            "My brother gave me {s} for Christmas",
        ],
        "positive": [
            "the battery lasted for days",
            "the build quality felt solid",
            "setup took only a few minutes",
            "it was light and easy to carry",
            "the screen was sharp and bright",
            "it arrived quickly and well packaged",
            "the instructions were clear",
            "it has not let me down once",
        ],
        "negative": [
            "the battery died within hours",
            "it felt cheap and flimsy",
            "the instructions were useless",
            "it arrived with a cracked screen",
            "the buttons stopped responding",
            "customer support never replied to my emails",
            "it overheated constantly",
            "it does not do half of what the box claims",
        ],
        "positive_verdicts": [
            "I would buy {s} again in a heartbeat",
            "{s} works exactly as advertised",
        ],
        "negative_verdicts": [
            "{s} stopped working after two days",
            "I returned {s} the next day",
        ],
    },
    "appliance": {
        "subjects": [
            "the blender", "this vacuum cleaner", "the coffee machine",
            "this kettle", "the toaster", "the air fryer", "this rice cooker",
        ],
        "contexts": [
            "I bought {s} last month",
            "We have been using {s} every day for a month",
            "I ordered {s} during the sale",
            "We replaced our old one with {s}",
        ],
        "positive": [
            "it was very easy to clean",
            "it was surprisingly quiet",
            "the build quality felt solid",
            "the instructions were clear",
            "it heats up in seconds",
            "it arrived quickly and well packaged",
            "it saves me time every single morning",
            "it has not given me a single problem",
        ],
        "negative": [
            "it was far too noisy",
            "it leaked all over the counter",
            "it felt cheap and flimsy",
            "the instructions were useless",
            "the lid never closed properly",
            "it smelled of burning plastic",
            "the power cord is ridiculously short",
            "customer support never replied to my emails",
        ],
        "positive_verdicts": [
            "{s} works exactly as advertised",
            "I would buy {s} again in a heartbeat",
        ],
        "negative_verdicts": [
            "{s} broke within a week",
            "I returned {s} the next day",
        ],
    },
}

OPENERS = [
    "Honestly", "Overall", "In short", "Frankly", "All in all", "Simply put",
    "To sum up",
]
CLOSERS = {
    "positive": [
        "Highly recommended.", "Five stars from me.", "Absolutely worth it.",
        "Would recommend without hesitation.", "A real treat.",
    ],
    "negative": [
        "Avoid.", "Not recommended.", "One star.", "Save your money.",
        "Very disappointing.", "Never again.",
    ],
}
# fmt: on
REVIEW_TEMPLATES = [
    "{verdict}.",
    "{opener}, {verdict}.",
    "{aspect}, and {aspect2}.",
    "{verdict}: {aspect}.",
    "{context} and {aspect}.",
    "{aspect}. {closer}",
    "{verdict}. {closer}",
    "{context}, and honestly {verdict_it}.",
    "{aspect}, so {verdict_it}.",
    "{opener}, {aspect} and {aspect2}.",
]
LABELS = ("positive", "negative")


def compose_review(rng: random.Random, label: str) -> str:
    """Compose one short review whose polarity is ``label``."""
    domain = REVIEW_DOMAINS[rng.choice(sorted(REVIEW_DOMAINS))]
    subject = rng.choice(domain["subjects"])
    verdict = rng.choice(GENERIC_VERDICTS[label] + domain[f"{label}_verdicts"])
    aspect, aspect2 = rng.sample(domain[label], 2)
    text = rng.choice(REVIEW_TEMPLATES).format(
        verdict=verdict.format(s=subject),
        verdict_it=verdict.format(s="it"),
        aspect=aspect,
        aspect2=aspect2,
        context=rng.choice(domain["contexts"]).format(s=subject),
        opener=rng.choice(OPENERS),
        closer=rng.choice(CLOSERS[label]),
    )
    return text[0].upper() + text[1:]


def generate_sentiment(seed: int, size: int, exclude: set[str]) -> list[tuple[str, str]]:
    """Generate ``size`` unique, label-balanced ``(sentence, label)`` rows.

    Sentences in ``exclude`` are redrawn; accepted ones are added to it.
    """
    rng = random.Random(seed)
    rows = []
    for index in range(size):
        label = LABELS[index % 2]
        for _ in range(MAX_ATTEMPTS):
            sentence = compose_review(rng, label)
            if sentence not in exclude:
                break
        else:
            raise RuntimeError("could not draw a new unique review")
        exclude.add(sentence)
        rows.append((sentence, label))
    rng.shuffle(rows)
    return rows


def format_tsv(rows: list[tuple[str, str]]) -> str:
    """Render rows as a ``sentence<TAB>label`` TSV file with a header."""
    for sentence, _ in rows:
        if any(char in sentence for char in "\t\"'"):
            raise ValueError(f"unsafe character in {sentence!r}")
    lines = ["sentence\tlabel"] + [f"{sentence}\t{label}" for sentence, label in rows]
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with Unix newlines and report it."""
    path.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {path}")


def main() -> None:
    """Generate all sample data files into ``OUT_DIR``."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)

    seen_ner: set[str] = set()
    ner_train = generate_ner("train", TRAIN_SEED, NER_TRAIN_SIZE, seen_ner)
    ner_dev = generate_ner("dev", DEV_SEED, NER_DEV_SIZE, seen_ner)
    write(OUT_DIR / "ner_train.conll", format_conll(ner_train))
    write(OUT_DIR / "ner_dev.conll", format_conll(ner_dev))

    seen_reviews: set[str] = set()
    sentiment_train = generate_sentiment(TRAIN_SEED, SENTIMENT_TRAIN_SIZE, seen_reviews)
    sentiment_dev = generate_sentiment(DEV_SEED, SENTIMENT_DEV_SIZE, seen_reviews)
    write(OUT_DIR / "sentiment_train.tsv", format_tsv(sentiment_train))
    write(OUT_DIR / "sentiment_dev.tsv", format_tsv(sentiment_dev))


if __name__ == "__main__":
    main()
