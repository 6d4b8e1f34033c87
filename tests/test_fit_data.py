"""CSV readers: the two formats, and clear errors naming the line and column."""

import numpy as np
import pytest

from nrtjax.fitting import data

TAPS_OK = """subject,trial,smt_ms,period_ms,tap_s
s1,a,500,400,0.41
s1,a,500,400,0.80
s1,a,500,400,1.21
s1,a,500,400,1.60
s1,b,500,,0.52
s1,b,500,,1.03
s1,b,500,,1.51
s1,b,500,,2.02
s2,a,600,700,0.70
s2,a,600,700,1.41
s2,a,600,700,2.10
s2,a,600,700,2.80
s2,a,600,700,3.50
"""
HEAD = "subject,trial,smt_ms,period_ms,tap_s\n"


def _trial(times, smt="500", period="400", subject="s", trial="a"):
    return "".join(f"{subject},{trial},{smt},{period},{t}\n" for t in times)


def _write(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_read_taps_pads_and_converts(tmp_path):
    cohort = data.read_taps(_write(tmp_path, TAPS_OK))
    assert cohort.subjects == ["s1", "s2"]
    assert cohort.trials == [["a", "b"], ["a"]]
    d = cohort.data
    np.testing.assert_allclose(d.smt, [0.5, 0.6])
    assert np.isnan(d.period[0, 1]) and float(d.period[0, 0]) == pytest.approx(0.4)
    assert d.taps.shape == (2, 2, 5)
    np.testing.assert_array_equal(d.mask.sum(-1), [[4, 4], [5, 0]])
    np.testing.assert_allclose(d.taps[1, 0], [0.7, 1.41, 2.1, 2.8, 3.5])


def test_read_summary(tmp_path):
    text = "subject,smt_ms,period_ratio,asynchrony_ms\ng,450,1.3,-6.5\ng,450,0.7,10.5\n"
    cohort = data.read_summary(_write(tmp_path, text))
    np.testing.assert_allclose(cohort.data.ratio[0], [0.7, 1.3])
    np.testing.assert_allclose(cohort.data.asynchrony[0], [10.5, -6.5])


@pytest.mark.parametrize("text, match", [
    ("subject,trial,smt_ms,tap_s\ns,a,500,1\n", r"line 1 \(header\): missing column\(s\) period_ms"),
    ("subject,trial,smt_ms,period_ms,tap_s\ns,a,500,400,0.4\ns,a,500,400,abc\n",
     r"line 3, column tap_s: 'abc' is not a number"),
    ("subject,trial,smt_ms,period_ms,tap_s\ns,a,500,400,0.4\ns,a,NaN,400,0.8\n",
     r"line 3, column smt_ms: 'NaN' is not a finite number"),
    ("subject,trial,smt_ms,period_ms,tap_s\ns,a,500,400,0.4\ns,a,500,400,0.8\nt,a,500,400,1\n",
     r"line 4, column subject: subject 't' has only one row"),
    ("subject,trial,smt_ms,period_ms,tap_s\ns,a,500,400,0.8\ns,a,500,400,0.4\n",
     r"line 3, column tap_s: 0.4 is not after the previous tap 0.8 \(line 2\)"),
    ("subject,trial,smt_ms,period_ms,tap_s\ns,a,500,400,0.4\ns,a,500,450,0.8\n",
     r"line 3, column period_ms: 450.0 differs from 400.0 on line 2"),
    ("subject,trial,smt_ms,period_ms,tap_s\ns,a,-5,400,0.4\ns,a,-5,400,0.8\n",
     r"line 2, column smt_ms: -5.0 must be positive"),
    ("subject,trial,smt_ms,period_ms,tap_s\n,a,500,400,0.4\n", r"line 2, column subject: empty"),
    ("", r"is empty"),
    ("subject,trial,smt_ms,period_ms,tap_s\n", r"no data rows"),
])
def test_malformed_taps(tmp_path, text, match):
    with pytest.raises(data.CSVFormatError, match=match):
        data.read_taps(_write(tmp_path, text))


# Data a fit cannot use, refused before any compute (each also run as a user would, in
# tests/test_fit_job.py).
IMPLAUSIBLE = {
    "negative": (HEAD + _trial([0.4, 0.8, 1.2, 1.6]) + _trial([-1.6, -1.2, -0.8, -0.4], trial="b"),
                 r"line 6, column tap_s: -1.6 is negative"),
    "milliseconds": (HEAD + _trial([400, 800, 1200, 1600]),
                     r"lines 2-5 .*median inter-tap interval 400000 ms .*divide by 1000"),
    "smt_in_seconds": (HEAD + _trial([0.4, 0.8, 1.2, 1.6], smt="0.5"),
                       r"line 2, column smt_ms: SMT 0.5 ms is outside 100-3000 ms; it looks "
                       r"like seconds: write 500"),
    "not_increasing": (HEAD + _trial([0.4, 0.8, 0.8, 1.6]),
                       r"line 4, column tap_s: 0.8 is not after the previous tap"),
    "too_few": (HEAD + _trial([0.4, 0.8, 1.2, 1.6]) + _trial([0.4, 0.8], trial="b"),
                r"lines 6-7 \(subject 's', trial 'b'\): only 2 tap\(s\); a trial needs at least 4"),
    "period_factor_2": (HEAD + _trial([0.8, 1.6, 2.4, 3.2]),
                        r"interval 800 ms disagrees with period_ms 400 by a factor 2 "),
    "unpaced_vs_smt": (HEAD + _trial([1.2, 2.4, 3.6, 4.8], period=""),
                       r"disagrees with smt_ms 500 \(unpaced trial\) by a factor 2.4"),
    "too_fast": (HEAD + _trial([0.01, 0.02, 0.03, 0.04]),
                 r"median inter-tap interval 10 ms is outside human tapping"),
}


@pytest.mark.parametrize("case", sorted(IMPLAUSIBLE))
def test_implausible_taps(tmp_path, case):
    text, match = IMPLAUSIBLE[case]
    with pytest.raises(data.CSVFormatError, match=match):
        data.read_taps(_write(tmp_path, text))


@pytest.mark.parametrize("text, match", [
    ("subject,smt_ms,asynchrony_ms\ng,500,1\n", r"missing column\(s\) period_ratio"),
    ("subject,smt_ms,period_ratio,asynchrony_ms\ng,500,0.7,\ng,500,1.3,-6\n",
     r"line 2, column asynchrony_ms: empty value"),
    ("subject,smt_ms,period_ratio,asynchrony_ms\ng,500,0.7,nan\ng,500,1.3,-6\n",
     r"line 2, column asynchrony_ms: 'nan' is not a finite"),
    ("subject,smt_ms,period_ratio,asynchrony_ms\ng,500,0.7,3\n", r"line 2, column subject: subject 'g' has only one row"),
    ("subject,smt_ms,period_ratio,asynchrony_ms\ng,500,0.7,3\ng,500,0.7,4\n",
     r"line 3, column period_ratio: ratio 0.7 repeats line 2"),
])
def test_malformed_summary(tmp_path, text, match):
    with pytest.raises(data.CSVFormatError, match=match):
        data.read_summary(_write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.read_taps(tmp_path / "nope.csv")
