"""A session's history as a Jupyter notebook (nbformat 4.5)."""

from __future__ import annotations

import sys
from typing import Any

from ..engine import Session


def session_notebook(session: Session) -> dict[str, Any]:
    cells = []
    for cell in session.history:
        cells.append({
            "id": f"cell-{cell.execution_count}",
            "cell_type": "code",
            "execution_count": cell.execution_count,
            "metadata": {},
            "outputs": [_nbformat_output(output.model_dump(mode="json")) for output in cell.outputs],
            "source": cell.code,
        })
    version = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3 (sandlot)", "language": "python"},
            "language_info": {"name": "python", "version": version, "mimetype": "text/x-python",
                              "file_extension": ".py"},
            "sandlot": {"session_id": session.id},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _nbformat_output(output: dict[str, Any]) -> dict[str, Any]:
    if output["output_type"] == "execute_result" and output.get("execution_count") is None:
        output["execution_count"] = None
    return output
