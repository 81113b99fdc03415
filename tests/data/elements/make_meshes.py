#!/usr/bin/env python3
"""Writes the cantilever meshes used by tests/model/elements_test.cpp to compare vsense's solid
elements with CalculiX (one .inp per element type, all on the same distorted block).

The block [0, 30] x [0, 12] x [0, 8] mm is cut into 3 x 2 x 2 hexahedra (each hexahedron into
6 tetrahedra for C3D4/C3D10) and mapped through a smooth non-affine function, so that no element
is a parallelepiped and quadratic elements have curved edges. The face x = 0 is clamped.
Run from this folder: python3 make_meshes.py
"""
import math

NX, NY, NZ = 3, 2, 2
SIZE = (30.0, 12.0, 8.0)
MATERIAL = ("210000.", "0.3", "7.85E-09")  # E [MPa], nu, density [t/mm^3]
N_MODES = 12


def mapped(p):
    """Smooth, non-affine distortion of a point of the undistorted block."""
    x, y, z = p
    return (x + 0.9 * math.sin(0.15 * y + 0.2 * z) + 0.004 * x * y,
            y + 0.6 * math.sin(0.12 * x) + 0.02 * z * z - 0.01 * x,
            z + 0.5 * math.cos(0.1 * x + 0.07 * y) + 0.006 * x * y)


class Mesh:
    def __init__(self):
        self.ids = {}      # undistorted point key -> node id
        self.coords = []   # [(id, (x, y, z))]

    def node(self, p):
        key = tuple(round(c, 9) for c in p)
        if key not in self.ids:
            self.ids[key] = len(self.coords) + 1
            self.coords.append((self.ids[key], mapped(p)))
        return self.ids[key]


def grid_point(i, j, k):
    return (SIZE[0] * i / NX, SIZE[1] * j / NY, SIZE[2] * k / NZ)


def mid(a, b):
    return tuple(0.5 * (u + v) for u, v in zip(a, b))


HEX_CORNERS = [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)]
HEX_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)]
# Six tetrahedra around the main diagonal 0-6 of each hexahedron (same split in every cell, so
# the faces of neighbouring cells match); each listed with positive volume.
HEX_TO_TETS = [(0, 1, 2, 6), (0, 2, 3, 6), (0, 3, 7, 6), (0, 7, 4, 6), (0, 4, 5, 6), (0, 5, 1, 6)]
TET_EDGES = [(0, 1), (1, 2), (2, 0), (0, 3), (1, 3), (2, 3)]


def signed_volume(a, b, c, d):
    u = [b[i] - a[i] for i in range(3)]
    v = [c[i] - a[i] for i in range(3)]
    w = [d[i] - a[i] for i in range(3)]
    return (u[0] * (v[1] * w[2] - v[2] * w[1]) - u[1] * (v[0] * w[2] - v[2] * w[0])
            + u[2] * (v[0] * w[1] - v[1] * w[0]))


def build(element_type):
    mesh = Mesh()
    elements = []
    for k in range(NZ):
        for j in range(NY):
            for i in range(NX):
                corners = [grid_point(i + a, j + b, k + c) for a, b, c in HEX_CORNERS]
                if element_type in ("C3D8", "C3D20", "C3D20R"):
                    nodes = [mesh.node(p) for p in corners]
                    if element_type != "C3D8":
                        nodes += [mesh.node(mid(corners[a], corners[b])) for a, b in HEX_EDGES]
                    elements.append(nodes)
                else:
                    for tet in HEX_TO_TETS:
                        points = [corners[t] for t in tet]
                        assert signed_volume(*points) > 0
                        nodes = [mesh.node(p) for p in points]
                        if element_type == "C3D10":
                            nodes += [mesh.node(mid(points[a], points[b])) for a, b in TET_EDGES]
                        elements.append(nodes)
    return mesh, elements


def write(element_type, with_springs=False):
    """with_springs: the C3D8 deck plus a SPRINGA, a SPRING2, a SPRING1 and a MASS at free-end
    nodes, so weak (1e-12 N/mm, 1e-20 t) that no frequency moves; they only test how CalculiX
    counts them when it averages nodal stresses."""
    mesh, elements = build(element_type)
    lines = [f"** {element_type} cantilever for vsense's element tests; made by make_meshes.py",
             "*NODE, NSET=NALL"]
    for node_id, (x, y, z) in mesh.coords:
        lines.append(f"{node_id}, {x:.17g}, {y:.17g}, {z:.17g}")
    ground = []
    if with_springs:
        corner = mesh.ids[grid_point(NX, NY, NZ)]        # one element
        edge = mesh.ids[grid_point(NX, 1, NZ)]           # two elements
        other_corner = mesh.ids[grid_point(NX, 0, 0)]
        last_corner = mesh.ids[grid_point(NX, NY, 0)]
        ground = [len(mesh.coords) + 1, len(mesh.coords) + 2]
        lines.append(f"{ground[0]}, 40., 15., 10.")
        lines.append(f"{ground[1]}, 40., 5., 10.")
    lines.append(f"*ELEMENT, TYPE={element_type}, ELSET=EALL")
    for e, nodes in enumerate(elements, start=1):
        entries = [str(e)] + [str(n) for n in nodes]
        # CalculiX/Abaqus: at most 16 entries per line, continuation after a trailing comma.
        chunks = [entries[s:s + 16] for s in range(0, len(entries), 16)]
        lines.append(",\n".join(", ".join(c) for c in chunks))
    if with_springs:
        n = len(elements)
        lines += ["*ELEMENT, TYPE=SPRINGA, ELSET=ESPRINGA", f"{n + 1}, {corner}, {ground[0]}",
                  "*ELEMENT, TYPE=SPRING2, ELSET=ESPRING2", f"{n + 2}, {edge}, {ground[1]}",
                  "*ELEMENT, TYPE=SPRING1, ELSET=ESPRING1", f"{n + 3}, {other_corner}",
                  "*ELEMENT, TYPE=MASS, ELSET=EMASS", f"{n + 4}, {last_corner}",
                  "*SPRING, ELSET=ESPRINGA", "1.E-12",
                  "*SPRING, ELSET=ESPRING2", "1, 1", "1.E-12",
                  "*SPRING, ELSET=ESPRING1", "2", "1.E-12",
                  "*MASS, ELSET=EMASS", "1.E-20"]
    lines.append("*NSET, NSET=CLAMPED")
    clamped = [node_id for key, node_id in sorted(mesh.ids.items(), key=lambda kv: kv[1])
               if abs(key[0]) < 1e-9] + ground
    lines += [", ".join(str(n) for n in clamped[s:s + 16]) for s in range(0, len(clamped), 16)]
    lines += ["*BOUNDARY", "CLAMPED, 1, 3",
              "*MATERIAL, NAME=STEEL", "*ELASTIC", f"{MATERIAL[0]}, {MATERIAL[1]}",
              "*DENSITY", MATERIAL[2],
              "*SOLID SECTION, ELSET=EALL, MATERIAL=STEEL",
              "*STEP", "*FREQUENCY", str(N_MODES),
              "*NODE FILE", "U", "*EL FILE", "S", "*END STEP"]
    name = f"cantilever_{element_type.lower()}" + ("_springs" if with_springs else "")
    with open(f"{name}.inp", "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    for t in ("C3D4", "C3D10", "C3D8", "C3D20", "C3D20R"):
        write(t)
    write("C3D8", with_springs=True)
