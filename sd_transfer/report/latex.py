"""The report's tables as LaTeX (booktabs), in the form papers print them."""
import re
from typing import List

from .tables import TextTable

_ESCAPES = {'\\': r'\textbackslash{}', '&': r'\&', '%': r'\%', '$': r'\$', '#': r'\#',
            '_': r'\_', '{': r'\{', '}': r'\}', '~': r'\textasciitilde{}',
            '^': r'\textasciicircum{}'}
# after escaping: the report's symbols in math mode
_SYMBOLS = [('±', r'$\pm$'), ('Δ', r'$\Delta$'), ('×', r'$\times$'), ('–', '--'), ('−', '$-$')]


def escape(text) -> str:
    text = re.sub(r'[\\&%$#_{}~^]', lambda m: _ESCAPES[m.group()], str(text))
    text = re.sub(r'(?<![\w.-])-(?=\d)', '−', text)  # a minus sign, not a hyphen
    for old, new in _SYMBOLS:
        text = text.replace(old, new)
    return text


def latex(table: TextTable) -> List[str]:
    """One ``table`` float: the columns that say what a row is left-aligned, n right."""
    spec = 'l' * table.lead + 'r' + 'c' * (len(table.header) - table.lead - 1)
    lines = [r'\begin{table}[ht]', r'\centering', r'\small',
             rf'\caption{{{escape(table.title)}}}', rf'\begin{{tabular}}{{{spec}}}', r'\toprule',
             ' & '.join(escape(c) for c in table.header) + r' \\', r'\midrule']
    lines += [' & '.join(escape(c) for c in cells) + r' \\' for cells in table.body]
    lines += [r'\bottomrule', r'\end{tabular}']
    lines += [r'\par\footnotesize ' + escape(note) for note in table.notes]
    return lines + [r'\end{table}', '']


def document(tables: List[TextTable], source: str) -> str:
    """A fragment to ``\\input`` into a paper (booktabs)."""
    lines = [f'% SD transfer report of {escape(source)}, written by tools/report.py.',
             r'% Needs \usepackage{booktabs}. Values in %: mean $\pm$ std over pretraining seeds;'
             r' $\Delta$ with its 95% interval.', '']
    for table in tables:
        lines += latex(table)
    return '\n'.join(lines)
