"""A small application for the process tests: the order machine, shipping and purchase."""

from __future__ import annotations

from tests.machines.test_state_machines import order_machine, shipping_saga
from tests.machines.test_wait_for import purchase_saga

definitions = [order_machine(), shipping_saga([]), purchase_saga()]
