"""Every default of carroyage, once, with the reason for its value.

The rule versions' own parameters (threshold fraction, minimum population, contiguity...) are part
of each named rule in :mod:`carroyage.engine.rules`; what is here are the defaults of the stages
around them. The CLI, the library and the web service all read them from here.

>>> VECU_DISTANCE_M, TOLERANCE_M
(300.0, 20.0)
"""

from __future__ import annotations

# -- delimitation ---------------------------------------------------------------------------------
PLAUSIBLE_MEDIAN_EUR = (5_000, 100_000)
"""A median income outside this range (€ a year) is most likely a typo: the CLI warns."""

MAX_CELL_RESIDENTS = 100_000
"""No 200 m cell holds more residents or households (Paris' densest cells hold a few thousand):
a larger count is a damaged file, refused with its line."""
MAX_CELL_INCOME_EUR = 1e11
"""Bound on a cell's income figures (a sum of standards of living, or a median), € a year."""
MAX_GAP_FILL_CELLS = 1_000
"""Largest enclosed gap that ``--gap-fill`` may fill (a bigger value would exhaust memory)."""

# -- around the QPV (docs/facts.md, "Around the QPV") -------------------------------------------------
VECU_DISTANCE_M = 300.0
"""Quartier vécu: growth around each QPV (CGI art. 278 sexies: reduced VAT within 300 m)."""
FACILITY_REACH_M = 500.0
"""A facility within this distance of a QPV joins its vécu (the same article's NPNRU distance)."""
FACILITY_RADIUS_M = 100.0
"""The surroundings of a facility that join the vécu with it."""
NEAR_MARGIN = 0.1
"""Veille active for clusters whose median is within this share above the threshold."""
WATCH_MIN_POPULATION = 100.0
"""Smallest grid cluster worth watching (residents)."""

# -- comparing two geographies ---------------------------------------------------------------------
MIN_OVERLAP = 0.05
"""Quartiers match when they overlap by this share of the smaller one."""
UNCHANGED_IOU = 0.9
"""Intersection over union from which a one-to-one match is ``unchanged``."""

# -- sensitivity -----------------------------------------------------------------------------------
SENSITIVITY_FRACTIONS = "0.55:0.65:0.01"
SENSITIVITY_CONTIGUITIES = "rook,queen"
SENSITIVITY_MIN_POPULATIONS = "1000"

# -- address check ---------------------------------------------------------------------------------
TOLERANCE_M = 20.0
"""Within this distance of a boundary the answer is ``uncertain`` (geocoded positions are approximate)."""
MIN_SCORE = 0.5
"""Geocoding scores below this make the answer ``uncertain``."""
AROUND_RADIUS_M = 1500.0
"""Zones drawn around a point on the web page's map."""
CSV_CHUNK_ROWS = 50_000
"""Rows per chunk when a CSV file is annotated (memory stays flat whatever the file's size)."""
MAX_UPLOAD_MB = 50.0
"""Largest CSV upload the web service accepts."""
MAX_ADDRESS_CHARS = 500
"""Longest address field accepted (characters): a longer one is an ``invalid`` row with a reason.
The longest BAN label is about 150 characters; the bound keeps a pasted page out of the matcher."""
GEOCODE_FLOOR = 0.4
"""Geocoding scores below this are ``not found``: no position, hence never a zone."""
STREET_MIN_SIMILARITY = 0.75
"""A street name resembling the query's less than this (rapidfuzz WRatio / 100) is no candidate."""
NEAREST_WITHIN_M = 5000.0
"""``locate-csv`` gives an ``out`` row the nearest zone within this distance (empty beyond): the
near misses a planner looks at, found with a bounded search (an unbounded one for a national
file of a million rows costs more than the whole lookup)."""
CANDIDATES = 5
"""Candidates returned by ``/search`` (addok's default ``limit``)."""
WORKERS = 1
"""Processes of ``carroyage serve`` (``--workers``); ``locate-csv`` uses every core by default."""
HOST, PORT = "127.0.0.1", 8000
"""Where ``carroyage serve`` listens by default (loopback only)."""
HEADERS_TIMEOUT_S = 10.0
"""``serve``: a connection gets HTTP 408 and is closed unless its request line and headers arrive
within this many seconds of it opening (or of its first byte after a keep-alive pause): a client
trickling its headers (slowloris), or opening sockets and sending nothing, holds none for long."""
REQUEST_TIMEOUT_S = 120.0
"""``serve``: the same for the whole request, body included (a 50 MB upload needs ~3.4 Mbit/s).
The computation of the answer is not bounded: a large CSV takes as long as it takes."""
KEEP_ALIVE_S = 5
"""``serve``: an idle keep-alive connection is closed after this many seconds (uvicorn's default)."""
MAX_CONNECTIONS = 200
"""``serve``: open connections per worker process; a request over the limit gets HTTP 503."""
MAX_HEADER_BYTES = 16_384
"""``serve``: request line and headers; longer gets HTTP 431 (browsers send well under 4 KiB)."""
UPLOAD_DRAIN_MB = 8.0
"""``serve``: after refusing a body over the limit (HTTP 413), up to this much more of it is read
and discarded so that the client, still sending, receives the answer rather than a reset."""
SHUTDOWN_TIMEOUT_S = 10
"""``serve``: on SIGTERM, requests in flight get this long to finish before connections are cut."""

# -- files for GIS users (docs/publishing.md, "Files for GIS users") -----------------------------
METROPOLITAN_OUTPUT_EPSG = 2154
"""CRS of the GeoPackage and GeoParquet files written from a metropolitan grid (EPSG:3035):
Lambert-93, the legal CRS of metropolitan France (décret 2000-1276), the one INSEE ships its own
grid files in and the one French GIS teams work in. Grids in any other CRS (the overseas grids,
built by INSEE in their local CRS, :data:`OVERSEAS_GRID_EPSG`) are written in their own CRS;
GeoJSON is always EPSG:4326 (RFC 7946). Computation stays in the grid's CRS."""

# -- demo ------------------------------------------------------------------------------------------
DEMO_RULE = "decree-2014"
DEMO_NATIONAL_MEDIAN = 22_040
"""France's 2019 median standard of living (Insee Première n°1875), the grid's income concept."""

# -- tableaux de bord (carroyage indicators; docs/indicators.md) ---------------------------------
INDICATORS_RULE = "decree-2014"
"""The rule whose threshold the tableau's "share below the threshold" estimates."""
INDICATORS_NATIONAL_MEDIAN = 22_040.0
"""National median standard of living for that threshold (2019, Insee Première n°1875); give each
grid vintage its own with ``--national-median``."""
FRAGILE_MIN_HOUSEHOLDS = 11.0
"""Below this many (area-weighted) fiscal households a zone's figures are fragile: INSEE's own
secrecy threshold for any figure."""
FRAGILE_IMPUTED_SHARE = 0.5
"""Above this share of residents in imputed cells (``i_est_200``) a zone's figures are fragile."""
PERSONS_PER_HOUSEHOLD = 2.2
"""Residents per household when a grid has no household column (2019 national mean, 2.19):
11 households are then taken as 24.2 residents."""
REFERENCE_MIN_OVERLAP = 0.05
"""A reference commune stands beside a zone that has at least this share of its area in it."""
CHANGE_MAX_COVERAGE_GAP = 0.001
"""Two grid vintages whose coverage of a territory (``grid_coverage``) differs by more than this
share of its area give it no change: they do not describe the same place."""

# -- household microdata, gridding, secrecy, synthetic households (issue 16; docs/households.md) ---
HOUSEHOLDS_MAX_BAD_SHARE = 0.05
"""Above this share of unusable household rows (missing coordinates, negative income or persons,
points outside the CRS's area of use...) the run stops: the file is more likely wrong than dirty."""
HOUSEHOLDS_THREADS = 2
"""Threads reading, checking, sorting and summing households (at most the machine's cores): the
steps run on disjoint blocks of rows where numpy and Arrow release the GIL, so the results are the
same, byte for byte, with any number of threads."""
UNDER14_SHARE_OF_OTHER_PERSONS = 0.3
"""When ages are unknown, this share of the persons other than the first is taken as under 14
(France: about 11 million under-14s among the 37 million persons who are not the first of their
household), so each other person counts 0.5 × 0.7 + 0.3 × 0.3 = 0.44 UC on average."""
OVERSEAS_GRID_EPSG = (5490, 2975, 2972, 4471)
"""Local CRSs in which INSEE builds the overseas grids (Antilles, Réunion, Guyane, Mayotte):
households given in one of them are gridded in it, not in EPSG:3035."""
POVERTY_LINE_FRACTION = 0.6
"""``men_pauv``: households below this fraction of the national median standard of living."""
POVERTY_NATIONAL_MEDIAN_EUR = 22_040.0
"""National median standard of living behind ``men_pauv`` (2019, Insee Première n°1875)."""
SECRECY_MIN_HOUSEHOLDS = 11
"""INSEE's secrecy rule: a cell with fewer fiscal households is not published alone."""
SECRECY_BLOCKS_M = (1000, 2000, 4000, 8000, 16000, 32000)
"""Aligned squares (metres) tried in turn to group small cells until a group has enough households;
what is left after the largest forms one last group."""
SYNTH_BENEFIT_FLOOR_EUR = 6_000.0
"""Synthetic bridge, declared → disposable income per UC: transfers give this much at zero income…"""
SYNTH_BENEFIT_TAPER = 0.3
"""…withdrawn at this rate of declared income (gone at 20,000 €)…"""
SYNTH_TAX_START_EUR = 25_000.0
SYNTH_TAX_RATE = 0.2
"""…and income tax takes this marginal share above ``SYNTH_TAX_START_EUR``."""
SYNTH_SPREAD_BOUNDS = (0.15, 1.0)
"""Log-spread of a synthetic cell's standard of living is kept in this range."""
SYNTH_UNDER14_SHARE = {2: 0.1, 3: 0.5}
"""Share of the other persons who are under 14: in two-person households, from three on."""
