"""Where the simulated fleet stands: real Philadelphia neighbourhoods.

Each entry is a neighbourhood's approximate centre (decimal degrees, WGS 84,
rounded to about 100 m) and a relative demand weight. The coordinates are
public geographic facts, taken as the approximate locations given for these
neighbourhoods in their English Wikipedia articles and OpenStreetMap place
names; they are rounded and only need to put a marker in the right part of
the city. The weights are our own modelling choice, not data: higher where
harm-reduction services report the most need (Kensington and its neighbours),
lower elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

CITY = "Philadelphia, PA"
SOURCE = (
    "approximate neighbourhood centres from the neighbourhoods' Wikipedia articles and "
    "OpenStreetMap place names, rounded to ~100 m; demand weights are NaloxNet's assumptions"
)

# Loose bounds of the city, used to check the table and any jitter around it.
LAT_RANGE = (39.86, 40.14)
LON_RANGE = (-75.29, -74.95)


@dataclass(frozen=True, slots=True)
class Neighbourhood:
    name: str
    lat: float
    lon: float
    weight: float


NEIGHBOURHOODS: tuple[Neighbourhood, ...] = (
    Neighbourhood("Kensington", 39.992, -75.123, 3.0),
    Neighbourhood("Harrowgate", 40.003, -75.110, 2.2),
    Neighbourhood("Fairhill", 39.995, -75.137, 2.2),
    Neighbourhood("McGuire", 40.000, -75.125, 2.0),
    Neighbourhood("Hunting Park", 40.015, -75.140, 1.6),
    Neighbourhood("Frankford", 40.021, -75.084, 1.5),
    Neighbourhood("Port Richmond", 39.985, -75.100, 1.3),
    Neighbourhood("Fishtown", 39.970, -75.134, 1.0),
    Neighbourhood("Nicetown-Tioga", 40.010, -75.160, 1.3),
    Neighbourhood("Strawberry Mansion", 39.990, -75.183, 1.2),
    Neighbourhood("Olney", 40.037, -75.121, 1.0),
    Neighbourhood("Germantown", 40.037, -75.173, 1.0),
    Neighbourhood("Logan", 40.032, -75.145, 0.9),
    Neighbourhood("Center City", 39.953, -75.165, 1.1),
    Neighbourhood("Chinatown", 39.955, -75.155, 0.8),
    Neighbourhood("Northern Liberties", 39.965, -75.142, 0.6),
    Neighbourhood("Point Breeze", 39.934, -75.181, 0.9),
    Neighbourhood("Grays Ferry", 39.940, -75.193, 0.8),
    Neighbourhood("South Philadelphia", 39.925, -75.170, 0.8),
    Neighbourhood("Kingsessing", 39.938, -75.225, 0.9),
    Neighbourhood("Mill Creek", 39.965, -75.220, 0.8),
    Neighbourhood("University City", 39.952, -75.193, 0.5),
    Neighbourhood("Brewerytown", 39.978, -75.182, 0.6),
    Neighbourhood("Juniata Park", 40.015, -75.100, 0.7),
    Neighbourhood("Bridesburg", 40.000, -75.070, 0.5),
    Neighbourhood("Mayfair", 40.035, -75.050, 0.6),
    Neighbourhood("Tacony", 40.027, -75.042, 0.5),
    Neighbourhood("Holmesburg", 40.045, -75.030, 0.5),
    Neighbourhood("Roxborough", 40.035, -75.217, 0.4),
    Neighbourhood("Manayunk", 40.026, -75.225, 0.4),
)
