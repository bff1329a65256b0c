"""How long each part of a demo visit takes, and how long a chair is held for it.

Every clinical interval comes from the site's clinic settings (planned infusion
length, minimum recovery per route, vitals cadence); what is left here is how real
visits scatter around them (arrivals, waits, how much longer than the minimum a
patient stays) and the size of an esketamine device, a fact of the product.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ketadash.models import Route
from ketadash.settings import ClinicSettings

IV, ESKETAMINE, LOZENGE = Route.IV.value, Route.ESKETAMINE.value, Route.LOZENGE.value
MINUTE = 60
SLOT_MINUTES = 30

# The plan of each route. IV: 0.5 mg/kg (Fava 2020; APA consensus). Esketamine: whole
# 28 mg devices, 56 mg for the first two doses then 84 mg, the rest between devices from
# the settings (Spravato device instructions, S1 in clinic-facts). Lozenge: one fixed dose,
# held for the settings' minutes.
IV_MG_PER_KG = 0.5
LOZENGE_MG = 150.0

# How visits scatter, in minutes: arrival around the booked time, the wait to the start.
ARRIVAL_MINUTES = {IV: (-10, 20), LOZENGE: (-10, 20), ESKETAMINE: (-10, 15)}
WAIT_MINUTES = {IV: (10, 25), LOZENGE: (10, 25), ESKETAMINE: (10, 20)}
# How much longer than the minimum recovery patients stay (IV: 30–60 min observation).
RECOVERY_SPREAD_MINUTES = {IV: 30, LOZENGE: 15, ESKETAMINE: 20}
RIDE_WAIT_MINUTES = 20
# Seconds of slack a chair's block keeps after the latest possible discharge.
BLOCK_SLACK_MINUTES = 2


def esketamine_devices(*, doses_before: int) -> int:
    """Devices for a patient's next esketamine dose: 56 mg twice, then 84 mg (Spravato label)."""
    return 3 if doses_before >= 2 else 2


@dataclass(frozen=True, kw_only=True)
class VisitTimes:
    """A site's visit timings, in minutes, derived from its clinic settings."""

    settings: ClinicSettings

    def planned_minutes(self, route: str, *, devices: int = 2) -> int:
        """The session's planned administration time: the infusion, the devices, the lozenge."""
        if route == IV:
            return self.settings.planned_infusion_minutes
        if route == ESKETAMINE:
            return (devices - 1) * self.settings.esketamine_device_interval_minutes
        return self.settings.lozenge_dose_minutes

    def dose_minutes(self, route: str, *, devices: int = 2) -> tuple[float, float]:
        """From the start of the dose to its end, as it really goes (low, high)."""
        planned = self.planned_minutes(route, devices=devices)
        if route == ESKETAMINE:
            # The last device's two sprays take a minute or two after its rest ends.
            return planned + 0.5, planned + 2
        if route == IV:
            return planned - 2, planned + 3
        return planned - 5, planned + 5

    def min_recovery(self, route: str) -> int:
        """The route's minimum recovery, from the setting."""
        return self.settings.min_recovery_minutes(route)

    def recovery_minutes(self, route: str) -> tuple[float, float]:
        """How long patients stay before they are ready (low is the setting's minimum)."""
        low = self.min_recovery(route)
        return low, low + RECOVERY_SPREAD_MINUTES[route]

    @staticmethod
    def recovery_counts_from_start(route: str) -> bool:
        """Esketamine is observed from the first device (REMS form); the others from the end."""
        return route == ESKETAMINE

    def longest_visit_minutes(self, route: str) -> float:
        """Latest arrival, longest wait and dose, and the minimum recovery: the chair's need."""
        dose = self.dose_minutes(route, devices=3)[1]
        recovery = self.min_recovery(route)
        from_start = self.recovery_counts_from_start(route)
        in_chair = max(dose, recovery) if from_start else dose + recovery
        return ARRIVAL_MINUTES[route][1] + WAIT_MINUTES[route][1] + in_chair

    def block_slots(self, route: str) -> int:
        """Half-hours a chair is held from the booked time: the whole visit always fits."""
        need = self.longest_visit_minutes(route) + BLOCK_SLACK_MINUTES
        return math.ceil(need / SLOT_MINUTES)

    def block_minutes(self, route: str) -> int:
        return self.block_slots(route) * SLOT_MINUTES
