"""Rental contracts (DESIGN §5): the machine as one table (``machine.py``), the money (``money.py``), which dates
are free (``availability.py``), the scheduler's timed edges (``jobs.py``), the contract and its rules
(``contract.py``), dates as people write them (``kdates.py``) and the service that joins them (``actions.py``).
"""

from market.rentals.actions import Rentals
from market.clock import Clock
from market.rentals.contract import BUSY, FINAL, HOLDING, OPEN, PENDING, Contract, DatesTaken, Rules
from market.rentals.machine import EDGES, GUARDS, NOTIFY, TIMED, Edge, private_to, table_markdown

__all__ = ["BUSY", "EDGES", "FINAL", "GUARDS", "HOLDING", "NOTIFY", "OPEN", "PENDING", "TIMED", "Clock",
           "Contract", "DatesTaken", "Edge", "Rentals", "Rules", "private_to", "table_markdown"]
