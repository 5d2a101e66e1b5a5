"""Fixed vocabularies of the synthetic world: names, e-mail domains, time zones, copy.

Everything here is made up or generic. E-mail domains are the reserved example domains
(RFC 2606), so no generated address can ever reach a real mailbox.
"""

from __future__ import annotations

FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "Elijah", "Isabella", "Lucas",
    "Mia", "Mateo", "Charlotte", "Leo", "Harper", "Ethan", "Evelyn", "Henry", "Abigail", "Samuel",
    "Emily", "Daniel", "Ella", "Jack", "Chloe", "Benjamin", "Lena", "Felix", "Clara", "Jonas",
    "Hannah", "Paul", "Lea", "Maximilian", "Marie", "Luca", "Sofia", "Hugo", "Camille", "Louis",
    "Manon", "Gabriel", "Ines", "Arthur", "Lucia", "Pablo", "Martina", "Alejandro", "Giulia",
    "Lorenzo", "Francesca", "Matteo", "Aisha", "Omar", "Fatima", "Yusuf", "Priya", "Arjun",
    "Ananya", "Rohan", "Mei", "Wei", "Yuki", "Haruto", "Sakura", "Minjun", "Jiwoo", "Thandiwe",
    "Sipho", "Amara", "Kwame", "Zanele", "Lars", "Ingrid", "Freya", "Magnus", "Astrid", "Nils",
    "Zofia", "Jakub", "Oskar", "Aoife", "Cian", "Siobhan", "Tomas", "Valentina", "Diego", "Camila",
    "Santiago", "Beatriz", "Rafael", "Mariana",
)

LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee",
    "Thompson", "White", "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "Allen", "King",
    "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Mueller", "Schmidt", "Schneider",
    "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann", "Dubois", "Bernard", "Moreau",
    "Laurent", "Lefebvre", "Fernandez", "Lopez", "Gonzalez", "Sanchez", "Perez", "Rossi", "Russo",
    "Ferrari", "Esposito", "Bianchi", "Romano", "Jansen", "DeVries", "Bakker", "Visser",
    "Andersson", "Johansson", "Karlsson", "Nilsson", "Kowalski", "Nowak", "Wisniewski", "Murphy",
    "Kelly", "OBrien", "Byrne", "Sato", "Suzuki", "Takahashi", "Tanaka", "Kim", "Park", "Choi",
    "Chen", "Wang", "Li", "Zhang", "Patel", "Sharma", "Singh", "Gupta", "Khan", "Nkosi", "Dlamini",
    "Mokoena", "Silva", "Santos", "Oliveira", "Costa", "Tremblay", "Roy", "Gagnon",
)

EMAIL_DOMAINS = ("example.com", "example.org", "example.net")

# (IANA name, ISO 3166-1 country, standard UTC offset in hours, share of the audience).
# Standard offsets only: daylight saving shifts the preferred hour by one at most, which the
# simulation does not need.
TIMEZONES = (
    ("America/New_York", "US", -5.0, 0.13),
    ("America/Chicago", "US", -6.0, 0.07),
    ("America/Denver", "US", -7.0, 0.03),
    ("America/Los_Angeles", "US", -8.0, 0.08),
    ("America/Toronto", "CA", -5.0, 0.04),
    ("America/Vancouver", "CA", -8.0, 0.02),
    ("America/Mexico_City", "MX", -6.0, 0.03),
    ("America/Sao_Paulo", "BR", -3.0, 0.03),
    ("Europe/London", "GB", 0.0, 0.10),
    ("Europe/Dublin", "IE", 0.0, 0.02),
    ("Europe/Berlin", "DE", 1.0, 0.08),
    ("Europe/Paris", "FR", 1.0, 0.06),
    ("Europe/Madrid", "ES", 1.0, 0.04),
    ("Europe/Rome", "IT", 1.0, 0.03),
    ("Europe/Amsterdam", "NL", 1.0, 0.03),
    ("Europe/Stockholm", "SE", 1.0, 0.02),
    ("Europe/Warsaw", "PL", 1.0, 0.02),
    ("Africa/Johannesburg", "ZA", 2.0, 0.02),
    ("Asia/Kolkata", "IN", 5.5, 0.03),
    ("Asia/Singapore", "SG", 8.0, 0.02),
    ("Asia/Tokyo", "JP", 9.0, 0.03),
    ("Australia/Sydney", "AU", 10.0, 0.04),
    ("Pacific/Auckland", "NZ", 12.0, 0.01),
)

# Countries whose shoppers mostly pay in euro or pound sterling; everyone else mostly in USD.
EURO_COUNTRIES = frozenset({"IE", "DE", "FR", "ES", "IT", "NL"})
POUND_COUNTRIES = frozenset({"GB"})
# Fixed conversion from the USD list price, so an order's amount is the price in its currency.
FX_FROM_USD = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79}

# Product name stems are not written anywhere; the catalogue only needs price ranges.
# (low, high) list price in USD per category.
CATEGORY_PRICE_RANGES = {
    "apparel": (12.0, 140.0),
    "beauty": (6.0, 70.0),
    "electronics": (25.0, 900.0),
    "home": (9.0, 350.0),
    "outdoor": (15.0, 450.0),
    "toys": (7.0, 90.0),
}

SUBJECT_LINES = {
    "apparel": (
        "New season styles just landed",
        "Your wardrobe refresh: 20% off apparel",
        "The jackets everyone is asking about",
    ),
    "beauty": (
        "Glow up: new beauty arrivals",
        "Your skincare routine, upgraded",
        "Beauty favourites are back in stock",
    ),
    "electronics": (
        "The gadgets of the season are here",
        "Smart upgrades for less",
        "Headphones, speakers and more on sale",
    ),
    "home": (
        "Make your home feel new again",
        "Cosy picks for every room",
        "Kitchen essentials at their best price",
    ),
    "outdoor": (
        "Gear up for the weekend outdoors",
        "Trail-ready: new outdoor equipment",
        "Camping season starts now",
    ),
    "toys": (
        "Toys that spark imagination",
        "Game night just got better",
        "Gifts kids will love",
    ),
    "general": (
        "This week's picks for you",
        "Our biggest sale of the season",
        "New arrivals across the shop",
        "Last chance: offers end tonight",
    ),
}

CAMPAIGN_THEMES = ("spotlight", "weekly picks", "flash sale", "new arrivals", "bestsellers")
