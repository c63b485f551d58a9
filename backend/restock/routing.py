"""Vehicle routing with OR-Tools: the shift as a time window, service times, van capacity.

Every stop is optional with a drop penalty by urgency, so the solver leaves
out the least pressing stops when the shift or the vans cannot take them all.
The arc cost is distance in metres; a critical stop's penalty is larger than
any route, an urgent one's larger than any detour. A routine stop (below par,
nothing pressing) is opportunistic: it is routed only when its naloxone is
depleted by at least ``ROUTINE_FILL_SHARE`` of par and it lies within
``ROUTINE_DETOUR_M`` there and back of a pressing stop, and it is worth
``ROUTINE_METRES_PER_ITEM`` of detour per item it takes. A machine that will
not run out before the next shift is thus no trip of its own. A stop due during
the shift (naloxone forecast to run out then, or out already) has a soft upper
bound on its arrival: each second later costs ``LATE_METRES_PER_SECOND``.
Each van that leaves the depot costs ``VAN_FIXED_METRES``, so a second van
goes out only for stops the first cannot take.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from datetime import timedelta

from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from backend.restock.model import (
    LeftOut,
    LoadLine,
    Matrix,
    Plan,
    PlannedStop,
    ProductLoad,
    Shift,
    SlotLoad,
    Stop,
    Urgency,
    VanRoute,
)

log = logging.getLogger(__name__)

ROUTINE_METRES_PER_ITEM = 1_500
"""What a routine stop's items are worth in detour (``nx-sim restock-eval``, docs/restock.md)."""
ROUTINE_FILL_SHARE = 0.4
"""A routine stop is routed only when its naloxone slots miss at least this share of par:
a top-up of a few doses saves no later trip, it only adds one."""
ROUTINE_DETOUR_M = 3_000
"""Farthest a routine stop may lie from a pressing stop (or the depot), there and back."""
VAN_FIXED_METRES = 10_000
"""What taking a van out costs in the objective, as metres driven: a second van is used
when the stops it takes are worth more than that, not to shorten the first van's day."""
# The search stops at the shift's solver budget, or sooner for a small plan:
# guided local search only ends at its time limit, and a handful of stops
# needs milliseconds, not the second that 200 may use.
SECONDS_PER_STOP = 0.005
MIN_SECONDS = 0.05
# Share of the budget spent choosing and routing the stops; the rest reorders
# each van's stops on its own, on distance alone (no drop penalties in the way).
CHOOSING_SHARE = 0.7
FIRST_SOLUTION_SECONDS = 30.0
"""The limit when the budget ran out before any solution: a safety net, not a budget."""
PENALTY = {Urgency.CRITICAL: 10**11, Urgency.URGENT: 10**9}
SWAP_NOW_PENALTY = 10**12
"""Leaving out a stop whose naloxone must come out before the next shift: above any other
critical stop, since waiting would dispense expired or heat-exposed doses."""
LATE_METRES_PER_SECOND = 0.1
"""Cost of reaching a stop after its due time, per second late, in metres: 360 m an hour.
It orders the day (a machine about to run out comes before one that is not) without
sending the van back and forth across the city: at 2 m a second (7.2 km an hour) the
evaluation's vans drove about a quarter more, with no fewer empty hours (docs/restock.md)."""
COST_PER_METRE = 10
"""The solver's costs are integers: decimetres, so that lateness can cost less than a
metre a second."""


def _status_name(code: int) -> str:
    """Return the solver's status as a word, e.g. ``success`` or ``fail_timeout``."""
    name: str = routing_enums_pb2.RoutingSearchStatus.Value.Name(code)
    return name.removeprefix("ROUTING_").lower()


def drop_penalty(stop: Stop) -> int:
    """Return what leaving a stop out costs, in the same unit as a metre driven."""
    if stop.swap_now:
        return SWAP_NOW_PENALTY
    if stop.urgency in PENALTY:
        return PENALTY[stop.urgency]
    return ROUTINE_METRES_PER_ITEM * max(1, stop.items)


def left_out_order(item: LeftOut) -> tuple[int, str]:
    """Sort left-out machines most pressing first, then by id."""
    return Urgency(item.urgency).rank, item.machine_id


def _screen(shift: Shift, stops: list[Stop], matrix: Matrix) -> tuple[list[int], list[LeftOut]]:
    """Split stops into those the solver may route and those no van can serve at all."""
    keep: list[int] = []
    out: list[LeftOut] = []
    for i, stop in enumerate(stops):
        node = i + 1
        round_trip = matrix.duration_s[0][node] + stop.service_s + matrix.duration_s[node][0]
        reason = None
        if stop.items > shift.van_capacity:
            reason = f"needs {stop.items} items, more than a van holds ({shift.van_capacity})"
        if reason is None and round_trip > shift.seconds:
            reason = (f"the round trip from the depot with its service takes "
                      f"{round_trip / 60:.0f} min, longer than the shift")
        if reason is None and stop.urgency is Urgency.ROUTINE:
            reason = _not_on_the_way(stop, node, stops, matrix)
        if reason is None:
            keep.append(i)
        else:
            out.append(LeftOut(machine_id=stop.machine_id, urgency=stop.urgency.value,
                               items=stop.items, reason=reason))
    return keep, out


def depleted_share(stop: Stop) -> float:
    """Return the share of par a stop would refill: of its naloxone, or of all slots if more.

    Doses to replace count as missing (they come out).
    """
    def share(loads: list[SlotLoad]) -> float:
        par = sum(x.par for x in loads)
        return 0.0 if par <= 0 else sum(x.quantity for x in loads) / par

    return max(share([x for x in stop.loads if x.is_naloxone]), share(list(stop.loads)))


def _not_on_the_way(stop: Stop, node: int, stops: list[Stop], matrix: Matrix) -> str | None:
    """Say why a routine stop is not worth routing: too full, or nothing pressing near it.

    It must miss ``ROUTINE_FILL_SHARE`` of its naloxone par, and reaching it from the
    nearest pressing stop (or the depot) and back must cost no more than its drop
    penalty nor ``ROUTINE_DETOUR_M``. The search alone, with a budget of milliseconds
    per stop, keeps almost every routine stop its first solution took in (measured with
    ``nx-sim restock-eval``: a van visiting every machine every day).
    """
    share = depleted_share(stop)
    if share < ROUTINE_FILL_SHARE:
        return (f"routine: {share:.0%} below par, less than the "
                f"{ROUTINE_FILL_SHARE:.0%} worth a stop before it is pressing")
    anchors = [0, *(k + 1 for k, s in enumerate(stops) if s.urgency is not Urgency.ROUTINE)]
    nearest = min(matrix.distance_m[a][node] + matrix.distance_m[node][a] for a in anchors)
    if nearest <= min(drop_penalty(stop), ROUTINE_DETOUR_M):
        return None
    return (f"routine: {nearest / 1000:.1f} km there and back from the nearest pressing stop, "
            f"more than its {stop.items} item(s) are worth")


def _parameters(seconds: float) -> pywrapcp.DefaultRoutingSearchParameters:
    params = pywrapcp.DefaultRoutingSearchParameters()
    # Cheapest-arc paths then guided local search until the limit: on the
    # benchmark's cities this served more stops in fewer kilometres per stop
    # than parallel cheapest insertion or savings (docs/restock.md).
    params.first_solution_strategy = (
        routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC)
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH)
    params.time_limit.FromMilliseconds(max(1, round(seconds * 1000)))
    return params


def due_seconds(shift: Shift, stop: Stop) -> int | None:
    """Return when (seconds into the shift) a stop is due, or None when not during the shift."""
    if stop.due is None:
        return None
    due = max(0, int((stop.due - shift.start).total_seconds()))
    return due if due < shift.seconds else None


def _add_due_times(model: pywrapcp.RoutingModel, manager: pywrapcp.RoutingIndexManager,
                   due: list[int | None]) -> None:
    """Make arriving after each node's due time cost ``LATE_METRES_PER_SECOND``."""
    time_dimension = model.GetDimensionOrDie("time")
    for node, when in enumerate(due):
        if node and when is not None:
            time_dimension.SetCumulVarSoftUpperBound(
                manager.NodeToIndex(node), when,
                max(1, round(LATE_METRES_PER_SECOND * COST_PER_METRE)))


def _first_solution(seconds: float) -> pywrapcp.DefaultRoutingSearchParameters:
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = (
        routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC)
    params.time_limit.FromMilliseconds(round(seconds * 1000))
    return params


def _resequence(order: list[int], distance: list[list[int]], elapsed: list[list[int]],
                horizon: int, seconds: float, due: list[int | None]) -> list[int]:
    """Return a van's stops in an order no costlier than ``order`` that still fits the shift.

    The cost is the distance plus lateness at stops due during the shift.
    """
    local = [0, *order]
    manager = pywrapcp.RoutingIndexManager(len(local), 1, 0)
    model = pywrapcp.RoutingModel(manager)
    model.SetArcCostEvaluatorOfAllVehicles(model.RegisterTransitMatrix(
        [[distance[a][b] * COST_PER_METRE for b in local] for a in local]))
    model.AddDimension(model.RegisterTransitMatrix(
        [[elapsed[a][b] for b in local] for a in local]), 0, horizon, True, "time")
    _add_due_times(model, manager, [due[a] for a in local])
    first = model.ReadAssignmentFromRoutes([list(range(1, len(local)))], True)
    if first is None:  # the route the first search found always fits; keep it if not
        return order
    found = model.SolveFromAssignmentWithParameters(first, _parameters(max(0.01, seconds)))
    if found is None or found.ObjectiveValue() >= first.ObjectiveValue():
        return order
    better = []
    index = found.Value(model.NextVar(model.Start(0)))
    while not model.IsEnd(index):
        better.append(local[manager.IndexToNode(index)])
        index = found.Value(model.NextVar(index))
    return better


def solve(shift: Shift, stops: list[Stop], matrix: Matrix) -> Plan:
    """Plan the vans' routes over ``stops``; ``matrix`` has the depot at 0, stop i at i + 1."""
    started = time.perf_counter()
    keep, left_out = _screen(shift, stops, matrix)
    nodes = [0, *(i + 1 for i in keep)]  # matrix rows of the routed places
    chosen = [stops[i] for i in keep]
    # Each van's stops as local node numbers (1 + index into ``chosen``), in order.
    orders: list[list[int]] = [[] for _ in range(shift.vans)]
    status = "nothing to route"
    elapsed: list[list[int]] = []
    if chosen:
        service = [0, *(s.service_s for s in chosen)]
        distance = [[matrix.distance_m[a][b] for b in nodes] for a in nodes]
        # Time from leaving one place's arrival to the next arrival: service there, then drive.
        elapsed[:] = [[matrix.duration_s[a][b] + service[i] for b in nodes]
                   for i, a in enumerate(nodes)]
        manager = pywrapcp.RoutingIndexManager(len(nodes), shift.vans, 0)
        model = pywrapcp.RoutingModel(manager)
        model.SetArcCostEvaluatorOfAllVehicles(model.RegisterTransitMatrix(
            [[d * COST_PER_METRE for d in row] for row in distance]))
        model.AddDimension(model.RegisterTransitMatrix(elapsed), 0, shift.seconds, True, "time")
        due = [None, *(due_seconds(shift, s) for s in chosen)]
        _add_due_times(model, manager, due)
        demand = model.RegisterUnaryTransitVector([0, *(s.items for s in chosen)])
        model.AddDimensionWithVehicleCapacity(
            demand, 0, [shift.van_capacity] * shift.vans, True, "load")
        for k, stop in enumerate(chosen, start=1):
            model.AddDisjunction([manager.NodeToIndex(k)], drop_penalty(stop) * COST_PER_METRE)
        model.SetFixedCostOfAllVehicles(VAN_FIXED_METRES * COST_PER_METRE)
        budget = min(shift.solver_seconds, max(MIN_SECONDS, SECONDS_PER_STOP * len(chosen)))
        solution = model.SolveWithParameters(_parameters(budget * CHOOSING_SHARE))
        status = _status_name(model.status())
        if solution is None and status == "fail_timeout":
            # A busy machine can spend the whole budget before the first solution:
            # take the first solution with greedy improvement, which ends on its own.
            log.warning("restock plan: no solution within %.2f s; taking the first one found",
                        budget * CHOOSING_SHARE)
            solution = model.SolveWithParameters(_first_solution(FIRST_SOLUTION_SECONDS))
            status = _status_name(model.status())
        served: set[int] = set()
        if solution is not None:
            for van in range(shift.vans):
                index = solution.Value(model.NextVar(model.Start(van)))
                while not model.IsEnd(index):
                    k = manager.IndexToNode(index)
                    orders[van].append(k)
                    served.add(k - 1)
                    index = solution.Value(model.NextVar(index))
            busy = [o for o in orders if len(o) > 2]
            for order in busy:
                order[:] = _resequence(order, distance, elapsed, shift.seconds,
                                       budget * (1 - CHOOSING_SHARE) / len(busy), due)
        for k, stop in enumerate(chosen):
            if k not in served:
                left_out.append(LeftOut(
                    machine_id=stop.machine_id, urgency=stop.urgency.value, items=stop.items,
                    reason="no time or van room left after more pressing or nearer stops"
                    if solution is not None else f"the solver found no plan ({status})"))
    vans = []
    for van, order in enumerate(orders):
        # No waiting is allowed (slack 0), so each arrival is the previous one
        # plus its service and the drive: what the solver's time dimension holds.
        arrivals, clock, here = [], 0, 0
        for k in order:
            clock += elapsed[here][k]
            arrivals.append(clock)
            here = k
        end = clock + elapsed[here][0] if order else 0
        vans.append(_van(shift, van + 1, [(chosen[k - 1], nodes[k], t)
                                          for k, t in zip(order, arrivals, strict=True)],
                         end, matrix))
    left_out.sort(key=left_out_order)
    seconds = time.perf_counter() - started
    log.info("restock plan: %d stops routed on %d van(s), %d left out, %.2f s (%s)",
             sum(len(r.stops) for r in vans), shift.vans, len(left_out), seconds, status)
    return Plan(
        depot=shift.depot,
        shift_start=shift.start,
        shift_end=shift.start + timedelta(seconds=shift.seconds),
        van_capacity=shift.van_capacity,
        distance_source=matrix.source,
        vans=vans,
        left_out=left_out,
        distance_km=round(sum(v.distance_km for v in vans), 3),
        served=sum(len(v.stops) for v in vans),
        solver_status=status,
        solver_seconds=round(seconds, 3),
    )


def _van(shift: Shift, van: int, visits: list[tuple[Stop, int, int]], end_s: int,
         matrix: Matrix) -> VanRoute:
    """Describe one van's route from its (stop, matrix row, arrival seconds) in order."""
    rows = [0, *(row for _, row, _ in visits), 0]
    metres = sum(matrix.distance_m[a][b] for a, b in itertools.pairwise(rows))
    driving = sum(matrix.duration_s[a][b] for a, b in itertools.pairwise(rows))
    products: Counter[str] = Counter()
    stops = []
    for order, (stop, _, arrival_s) in enumerate(visits, start=1):
        for load in stop.loads:
            products[load.product] += load.quantity
        arrival = shift.start + timedelta(seconds=arrival_s)
        stops.append(PlannedStop(
            order=order, machine_id=stop.machine_id, name=stop.name, lat=stop.at.lat,
            lon=stop.at.lon, urgency=stop.urgency.value, reasons=list(stop.reasons),
            arrival=arrival, departure=arrival + timedelta(seconds=stop.service_s),
            due=stop.due,
            service_minutes=round(stop.service_s / 60, 1), items=stop.items,
            load=[LoadLine(slot=x.slot, product=x.product, is_naloxone=x.is_naloxone,
                           count=x.count, par=x.par,
                           to_par=x.to_par, replace=x.replace, replace_lots=list(x.replace_lots),
                           quantity=x.quantity) for x in stop.loads]))
    service_s = sum(stop.service_s for stop, _, _ in visits)
    return VanRoute(
        van=van,
        stops=stops,
        load_list=[ProductLoad(product=p, quantity=q) for p, q in sorted(products.items())],
        items=sum(products.values()),
        distance_km=round(metres / 1000, 3),
        drive_minutes=round(driving / 60, 1),
        service_minutes=round(service_s / 60, 1),
        departure=shift.start,
        return_time=shift.start + timedelta(seconds=end_s if visits else 0),
    )
