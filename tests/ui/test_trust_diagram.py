"""The chain-of-trust SVG: the CA above what it issued, revoked ones crossed out, every name escaped."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

from kittylab import Subject, Workspace
from kittylab.render.trust import BOX_H, trust_diagram

SVG_NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on markup that is not well-formed XML
    assert root.tag == f"{SVG_NS}svg"
    return root


def nodes(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-name"): g for g in root.iter(f"{SVG_NS}g") if "kl-node" in (g.get("class") or "").split()}


def box(node: ET.Element) -> tuple[float, float]:
    rect = node.find(f"{SVG_NS}rect")
    return float(rect.get("x")), float(rect.get("y"))


def test_the_ca_is_above_what_it_issued(story):
    workspace, _, _ = story
    diagram = trust_diagram(workspace)
    root = parse(diagram.svg)
    shown = nodes(root)
    assert set(shown) == {"kitty-ca", "picture-server", "eager-client"}
    ca_y = box(shown["kitty-ca"])[1]
    assert all(box(shown[name])[1] >= ca_y + BOX_H for name in ("picture-server", "eager-client"))
    assert shown["picture-server"].find(f"{SVG_NS}g").get("class") == "kl-icon kl-icon-server"
    assert shown["eager-client"].find(f"{SVG_NS}g").get("class") == "kl-icon kl-icon-client"
    assert {node.get("data-status") for node in shown.values()} == {"valid"}
    assert repr(diagram) == "Chain of trust of kitty-ca: 2 certificates issued, 0 revoked"
    assert diagram._repr_svg_() == diagram.svg


def test_revoked_certificates_are_crossed_out(story):
    workspace, _, _ = story
    workspace.revoke("eager-client")
    diagram = trust_diagram(workspace)
    shown = nodes(parse(diagram.svg))
    revoked, server = shown["eager-client"], shown["picture-server"]
    assert revoked.get("data-status") == "revoked" and "kl-node-revoked" in revoked.get("class")
    assert [p.get("class") for p in revoked.iter(f"{SVG_NS}path")].count("kl-cross") == 1
    assert "kl-cross" not in [p.get("class") for p in server.iter(f"{SVG_NS}path")]
    # the cross lies under the name and the dates, faint, so that they stay readable
    children = list(revoked)
    cross = next(i for i, child in enumerate(children) if child.get("class") == "kl-cross")
    assert cross < min(i for i, child in enumerate(children) if child.tag == f"{SVG_NS}text")
    assert float(children[cross].get("opacity")) <= 0.4
    assert "1 revoked" in repr(diagram)


def test_expired_and_expiring_states(workspace):
    workspace.issue("short", profile="client", key="p256", days=10)
    soon = nodes(parse(trust_diagram(workspace).svg))["short"]
    assert soon.get("data-status") == "expiring"
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=20)
    assert nodes(parse(trust_diagram(workspace, now=later).svg))["short"].get("data-status") == "expired"


def test_intermediate_cas_hang_below_their_parent_with_what_they_issued(story):
    workspace, _, _ = story
    workspace.init_ca("kitty-issuing", key="p256", intermediate_of="kitty-ca")
    workspace.issue("via-issuing", profile="client", key="p256", ca="kitty-issuing")
    workspace.init_ca("kitty-old", key="p256", intermediate_of="kitty-ca")
    workspace.revoke("kitty-old")
    diagram = trust_diagram(workspace)
    shown = nodes(parse(diagram.svg))
    assert set(shown) == {"kitty-ca", "picture-server", "eager-client", "kitty-issuing", "via-issuing", "kitty-old"}
    (root_x, root_y), (mid_x, mid_y), (leaf_x, leaf_y) = (box(shown[n]) for n in ("kitty-ca", "kitty-issuing", "via-issuing"))
    assert root_x < mid_x < leaf_x and root_y < mid_y < leaf_y
    assert box(shown["picture-server"])[1] < mid_y  # the root's own leaves come first
    assert box(shown["kitty-old"])[1] > leaf_y and shown["kitty-old"].get("data-status") == "revoked"
    assert "intermediate CA" in "".join(shown["kitty-issuing"].itertext())
    assert "root CA" in "".join(shown["kitty-ca"].itertext())
    assert repr(diagram) == "Chain of trust of kitty-ca: 5 certificates issued, 1 revoked"


def test_hostile_subjects_cannot_inject_markup(workspace):
    hostile = [
        '</text><script>alert(1)</script><text>',
        'x" onload="alert(2)',
        "]]><foreignObject>&amp;</foreignObject>",
    ]
    for number, cn in enumerate(hostile):
        workspace.issue(f"hostile-{number}", profile="client", key="p256", subject=Subject(cn=cn, o='Evil "Corp" <b>'))
    svg = trust_diagram(workspace).svg
    root = parse(svg)
    tags = {element.tag.removeprefix(SVG_NS) for element in root.iter()}
    assert tags <= {"svg", "title", "g", "path", "rect", "text", "circle"}
    assert not any(name.startswith("on") for element in root.iter() for name in element.attrib)
    titles = " ".join(t.text or "" for t in root.iter(f"{SVG_NS}title"))
    assert "alert(1)" in titles and "onload" in titles and 'Evil \\"Corp\\"' in titles


def test_filter_keeps_matching_names_and_subjects(story):
    workspace, _, _ = story
    workspace.issue("alice", profile="client", key="p256", subject=Subject(cn="alice", ou="workshop-7"))
    assert set(nodes(parse(trust_diagram(workspace, filter="OU=workshop-7").svg))) == {"kitty-ca", "alice"}
    assert set(nodes(parse(trust_diagram(workspace, filter="picture").svg))) == {"kitty-ca", "picture-server"}


def test_many_certificates_wrap_into_rows_inside_the_drawing(workspace):
    for number in range(12):
        workspace.issue(f"student-{number:02d}", profile="client", key="p256")
    root = parse(trust_diagram(workspace).svg)
    width, height = float(root.get("width")), float(root.get("height"))
    shown = nodes(root)
    assert len(shown) == 13
    rows = {box(node)[1] for name, node in shown.items() if name != "kitty-ca"}
    assert len(rows) == 3
    for node in shown.values():
        rect = node.find(f"{SVG_NS}rect")
        x, y = box(node)
        assert 0 <= x and x + float(rect.get("width")) <= width and 0 <= y and y + BOX_H <= height


def test_a_workspace_without_ca(tmp_path):
    with Workspace(tmp_path / "empty") as workspace:
        diagram = trust_diagram(workspace)
    root = parse(diagram.svg)
    assert nodes(root) == {}
    assert "no CA yet" in "".join(root.itertext())


def test_save_writes_the_svg(story, tmp_path):
    workspace, _, _ = story
    path = trust_diagram(workspace).save(tmp_path / "trust.svg")
    parse(path.read_text(encoding="utf-8"))


def test_every_value_is_escaped_by_the_template_even_a_name_the_workspace_would_refuse(workspace):
    """The SVG is a template with autoescaping: a record named ``<script>`` (a store written by someone
    else) stays text in the box, its data-name and the drawing's title."""
    import dataclasses

    from kittylab.render.trust import draw

    hostile = '<script>"&\'</script>'
    ca = dataclasses.replace(workspace.ca_record(), name=hostile)
    ca = dataclasses.replace(ca, issuer=hostile)
    root = parse(draw([ca]).svg)
    assert set(nodes(root)) == {hostile}
    assert {element.tag.removeprefix(SVG_NS) for element in root.iter()} <= {"svg", "title", "g", "path", "rect", "text", "circle"}
    assert root.find(f"{SVG_NS}title").text == f"Chain of trust of {hostile}"
