"""The tables the frontend reads: punctuation, months, titles, abbreviations, units, currencies,
street suffixes, states. Data only; the rules that use them are in normalize.py and sentences.py."""

from __future__ import annotations

# Punctuation read as a token (a pause), weakest first: of two in a row the stronger stays. The
# symbol table lists the same marks in an order of its own (tts.text.symbols.PUNCTUATION), which
# trained voices store.
PUNCTUATION_STRENGTH = {",": 1, ":": 2, ";": 3, ".": 4, "!": 5, "?": 6}
SENTENCE_PUNCTUATION = ".!?"  # ends a sentence
CLAUSE_PUNCTUATION = ",;:"  # where an over-long sentence is cut first
CLOSING_QUOTES = "\"'”’)"  # may stand between a sentence's last mark and the space after it

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
MONTH_ABBREVIATIONS = {"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "Jun": 6, "Jul": 7, "Aug": 8, "Sep": 9, "Sept": 9,
                       "Oct": 10, "Nov": 11, "Dec": 12}
WEEKDAYS = {"Mon": "monday", "Tue": "tuesday", "Tues": "tuesday", "Wed": "wednesday", "Thu": "thursday",
            "Thur": "thursday", "Thurs": "thursday", "Fri": "friday", "Sat": "saturday", "Sun": "sunday"}

# Read wherever they stand, with or without a dot.
PERSONAL_TITLES = {"Mr": "mister", "Mrs": "missus", "Ms": "miz", "Messrs": "messieurs"}
# Read only before a capitalized name; (word, whether the dot may be left out).
TITLES = {"Prof": ("professor", True), "Mt": ("mount", True), "Rev": ("reverend", False),
          "Gen": ("general", False), "Capt": ("captain", False), "Lt": ("lieutenant", False),
          "Col": ("colonel", False), "Sgt": ("sergeant", False), "Gov": ("governor", False),
          "Sen": ("senator", False), "Rep": ("representative", False), "Hon": ("honorable", False),
          "Fr": ("father", False), "Pres": ("president", False), "Supt": ("superintendent", False),
          "Insp": ("inspector", False), "Cpl": ("corporal", False), "Adm": ("admiral", False)}
# Abbreviations read anywhere; the dot is optional where the bare form is not also a word.
ABBREVIATIONS = {"etc": "et cetera", "vs": "versus", "approx": "approximately", "Approx": "approximately", "Inc": "incorporated",
                 "Ltd": "limited", "Corp": "corporation", "Dept": "department", "dept": "department",
                 "Jr": "junior", "Sr": "senior", "yrs": "years", "govt": "government", "Govt": "government",
                 "intl": "international", "Intl": "international", "misc": "miscellaneous", "mgmt": "management",
                 "avg": "average", "Avg": "average", "qty": "quantity", "asst": "assistant", "Asst": "assistant",
                 "appt": "appointment", "bldg": "building", "Bldg": "building", "pkg": "package",
                 "Univ": "university", "Bros": "brothers", "Mfg": "manufacturing", "Natl": "national",
                 "incl": "including", "excl": "excluding", "req": "required", "tel": "telephone",
                 "Tel": "telephone", "Assn": "association", "Mgr": "manager", "mgr": "manager"}
ABBREVIATIONS_WITH_DOT = {"Co": "company", "fig": "figure", "Fig": "figure", "vol": "volume", "Vol": "volume",
                          "ca": "circa", "cf": "compare", "ch": "chapter", "Ch": "chapter", "Sec": "section",
                          "est": "established", "Est": "established", "viz": "namely", "ext": "extension", "Ext": "extension",
                          "Jan": "january", "Feb": "february", "Aug": "august", "Sept": "september",
                          "Oct": "october", "Nov": "november", "Dec": "december"}
# Abbreviations that rules of their own in normalize.py read, besides the tables above.
RULE_ABBREVIATIONS = ("Dr", "St", "No", "Nos", "e.g", "i.e", "p", "pp", "al")
# Every abbreviation the normalizer reads, lowercased. The sentence splitter does not end a
# sentence at the dot after one of these: the normalizer reads many with the word after them
# ("Gov. Brown", "fig. 3", "Dec. 5"), and where the dot also ends a sentence it says so itself.
DOTTED_WORDS = frozenset(word.lower() for word in (*PERSONAL_TITLES, *TITLES, *ABBREVIATIONS, *ABBREVIATIONS_WITH_DOT,
                                                   *MONTH_ABBREVIATIONS, *RULE_ABBREVIATIONS))
# Read as letters even where the dictionary has a word of the same spelling ("the US economy").
ALWAYS_SPELLED = frozenset({"US", "ID", "EST", "PST", "CST", "MST", "EDT", "PDT", "CDT", "MDT", "GMT", "UTC", "BST",
                            "CET"})
# Lowercase words said as their letters.
SPELLED_WORDS = frozenset({"ios", "otp", "www", "https", "gpu", "sms", "faq", "pdf", "html", "http", "ftp", "api", "usb"})

CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
              "€": ("euro", "euros", "cent", "cents"), "¥": ("yen", "yen", None, None),
              "₩": ("won", "won", None, None), "₹": ("rupee", "rupees", "paisa", "paise"),
              "₽": ("ruble", "rubles", "kopek", "kopeks"), "₪": ("shekel", "shekels", "agora", "agorot"),
              "₺": ("lira", "lira", "kurus", "kurus"), "₱": ("peso", "pesos", "centavo", "centavos"),
              "₫": ("dong", "dong", None, None)}
CURRENCY_CODES = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩"}
SCALES = {"thousand": "thousand", "million": "million", "billion": "billion", "trillion": "trillion",
          "k": "thousand", "K": "thousand", "m": "million", "M": "million", "b": "billion", "B": "billion",
          "bn": "billion", "BN": "billion", "tn": "trillion"}
# Units read only right after a number: symbol -> (singular, plural).
UNITS = {
    "km": ("kilometer", "kilometers"), "m": ("meter", "meters"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "kg": ("kilogram", "kilograms"), "kgs": ("kilogram", "kilograms"),
    "g": ("gram", "grams"), "mg": ("milligram", "milligrams"), "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"), "ft": ("foot", "feet"), "yd": ("yard", "yards"), "mi": ("mile", "miles"),
    "mph": ("mile per hour", "miles per hour"), "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"), "m/s": ("meter per second", "meters per second"),
    "l": ("liter", "liters"), "L": ("liter", "liters"), "ml": ("milliliter", "milliliters"),
    "mL": ("milliliter", "milliliters"), "gal": ("gallon", "gallons"), "KB": ("kilobyte", "kilobytes"),
    "kB": ("kilobyte", "kilobytes"), "MB": ("megabyte", "megabytes"), "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"), "Hz": ("hertz", "hertz"), "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"), "GHz": ("gigahertz", "gigahertz"), "W": ("watt", "watts"),
    "kW": ("kilowatt", "kilowatts"), "MW": ("megawatt", "megawatts"), "kWh": ("kilowatt hour", "kilowatt hours"),
    "V": ("volt", "volts"), "mAh": ("milliamp hour", "milliamp hours"), "ms": ("millisecond", "milliseconds"),
    "sec": ("second", "seconds"), "secs": ("second", "seconds"), "min": ("minute", "minutes"),
    "mins": ("minute", "minutes"), "h": ("hour", "hours"), "hr": ("hour", "hours"), "hrs": ("hour", "hours"),
    "wk": ("week", "weeks"), "wks": ("week", "weeks"), "mo": ("month", "months"), "mos": ("month", "months"),
    "yr": ("year", "years"), "yrs": ("year", "years"),
    "kbps": ("kilobit per second", "kilobits per second"), "Kbps": ("kilobit per second", "kilobits per second"),
    "Mbps": ("megabit per second", "megabits per second"), "mbps": ("megabit per second", "megabits per second"),
    "Gbps": ("gigabit per second", "gigabits per second"), "gbps": ("gigabit per second", "gigabits per second"),
    "MB/s": ("megabyte per second", "megabytes per second"), "fps": ("frame per second", "frames per second"),
    "rpm": ("revolution per minute", "revolutions per minute"), "bpm": ("beat per minute", "beats per minute"),
    "psi": ("pound per square inch", "pounds per square inch"), "dB": ("decibel", "decibels"),
    "px": ("pixel", "pixels"), "cal": ("calorie", "calories"), "kcal": ("kilocalorie", "kilocalories"),
    "tsp": ("teaspoon", "teaspoons"), "tbsp": ("tablespoon", "tablespoons"),
    "sq ft": ("square foot", "square feet"), "sq m": ("square meter", "square meters"),
    "sq km": ("square kilometer", "square kilometers"), "sq mi": ("square mile", "square miles"),
    "sq cm": ("square centimeter", "square centimeters"), "sq mm": ("square millimeter", "square millimeters"),
    "sq in": ("square inch", "square inches"), "sq yd": ("square yard", "square yards"),
    "°C": ("degree Celsius", "degrees Celsius"), "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
}
# Units also read in capitals ("12KG"), where no other unit has the same letters.
UNITS_ANY_CASE = {u: UNITS[u] for u in ("kg", "kgs", "km", "cm", "mm", "mg", "lbs", "mph", "kph", "mins", "hrs",
                                         "secs", "kbps", "mbps", "gbps")}
# What may follow "/" as "per": "$5/kg", "60 km/h" (that one is a unit of its own).
PER_UNITS = {"kg": "kilogram", "g": "gram", "lb": "pound", "oz": "ounce", "km": "kilometer", "mi": "mile",
             "m": "meter", "ft": "foot", "l": "liter", "L": "liter", "gal": "gallon", "h": "hour", "hr": "hour",
             "hour": "hour", "min": "minute", "s": "second", "sec": "second", "day": "day", "wk": "week",
             "week": "week", "mo": "month", "month": "month", "yr": "year", "year": "year", "night": "night",
             "person": "person", "head": "head", "unit": "unit", "item": "item", "sq ft": "square foot",
             "dL": "deciliter", "mL": "milliliter", "ml": "milliliter", "GB": "gigabyte", "MB": "megabyte"}
FRACTIONS = {"½": ("1/2", "a half"), "¼": ("1/4", "a quarter"), "¾": ("3/4", "three quarters"),
             "⅓": ("1/3", "a third"), "⅔": ("2/3", "two thirds"), "⅛": ("1/8", "an eighth")}
# Words before which a Roman numeral is a number ("World War II"); after other names it is an
# ordinal ("Henry VIII" -> Henry the eighth).
ROMAN_COUNTED = frozenset("war chapter part volume vol act scene phase type class level book section bowl "
                          "apollo episode season stage grade category".split())
SYMBOL_WORDS = {"&": "and", "+": "plus", "=": "equals", "@": "at", "%": "percent", "°": "degrees",
                "<": "less than", ">": "greater than"}
# Names after which "3.11" is a version ("Python three point eleven"), not a decimal.
VERSIONED_NAMES = ("Python", "Java", "Node", "iOS", "Android", "macOS", "Ubuntu", "Debian", "Firefox", "Chrome",
                   "Linux", "Rust", "Go", "PHP", "Ruby", "Perl", "Kotlin", "Swift", "TypeScript", "Angular",
                   "Django", "Rails", "Unity", "Blender", "Excel", "Office", "Photoshop")
URL_WORDS = {"www": "W W W", "com": "com", "org": "org", "net": "net", "edu": "E D U", "gov": "gov", "io": "I O",
             "uk": "U K", "co": "co", "ai": "A I", "html": "H T M L", "htm": "H T M", "php": "P H P",
             "pdf": "P D F", "jpg": "J P G", "png": "P N G"}

STREET_SUFFIXES = {"Ave": "avenue", "Av": "avenue", "Ct": "court", "Hwy": "highway", "Expy": "expressway",
                   "Fwy": "freeway", "Pkwy": "parkway", "Blvd": "boulevard", "Rd": "road", "Ln": "lane",
                   "Pl": "place", "Sq": "square", "Ter": "terrace", "Cir": "circle", "Trl": "trail",
                   "Aly": "alley", "Cres": "crescent", "Hts": "heights", "Pk": "park", "Rte": "route",
                   "Apt": "apartment", "Street": "street", "Avenue": "avenue", "Road": "road",
                   "Lane": "lane", "Drive": "drive", "Court": "court", "Boulevard": "boulevard", "Way": "way",
                   "Place": "place", "Highway": "highway", "Parkway": "parkway", "Terrace": "terrace"}
DIRECTIONS = {"N": "north", "S": "south", "E": "east", "W": "west", "NE": "northeast", "NW": "northwest",
              "SE": "southeast", "SW": "southwest"}
STATES = {"AL": "alabama", "AK": "alaska", "AZ": "arizona", "AR": "arkansas", "CA": "california",
          "CO": "colorado", "CT": "connecticut", "DE": "delaware", "FL": "florida", "GA": "georgia",
          "HI": "hawaii", "ID": "idaho", "IL": "illinois", "IN": "indiana", "IA": "iowa", "KS": "kansas",
          "KY": "kentucky", "LA": "louisiana", "ME": "maine", "MD": "maryland", "MA": "massachusetts",
          "MI": "michigan", "MN": "minnesota", "MS": "mississippi", "MO": "missouri", "MT": "montana",
          "NE": "nebraska", "NV": "nevada", "NH": "new hampshire", "NJ": "new jersey", "NM": "new mexico",
          "NY": "new york", "NC": "north carolina", "ND": "north dakota", "OH": "ohio", "OK": "oklahoma",
          "OR": "oregon", "PA": "pennsylvania", "RI": "rhode island", "SC": "south carolina",
          "SD": "south dakota", "TN": "tennessee", "TX": "texas", "UT": "utah", "VT": "vermont",
          "VA": "virginia", "WA": "washington", "WV": "west virginia", "WI": "wisconsin", "WY": "wyoming",
          "DC": "D C"}
