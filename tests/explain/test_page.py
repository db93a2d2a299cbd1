"""The explainer page's data against independent computations, the page file, and the server."""
import contextlib
import http.client
import itertools
import json
import math
import os
import re
import subprocess
import sys
import threading
from collections import defaultdict

import numpy as np
import pytest

import tconv
from tconv.explain import page
from tconv.explain.page import builder
from tconv.explain import serve, story
from tconv.spec import ConvSpec, ConvSpecError

EXPERIMENT = ConvSpec.forward((1, 1, 4, 4), (1, 1, 3, 3), stride=2, padding=1)
SPECS = {
    "experiment": EXPERIMENT,
    "1d-asymmetric-dilated": ConvSpec.forward((1, 1, 9), (1, 1, 3), stride=3,
                                              padding=((2, 0),), dilation=2),
    "2d-groups": ConvSpec.forward((1, 4, 5, 4), (4, 2, 2, 3), stride=(2, 1),
                                  padding=((1, 0), (0, 2)), groups=2),
    "op-past-stride": ConvSpec.forward((1, 1, 8), (1, 1, 2), stride=1, dilation=3,
                                       output_padding=2),
    "same-multichannel": ConvSpec.forward((2, 2, 5, 5), (3, 2, 3, 3), stride=2,
                                          padding="same"),
}


def _params(spec):
    return dict(stride=spec.stride, padding=spec.padding, dilation=spec.dilation,
                groups=spec.groups)


def _onehot(shape, flat):
    a = np.zeros(math.prod(shape), dtype=np.int64)
    a[flat] = 1
    return a.reshape(shape)


def _scatter_incidence(spec, padding):
    """{output cell: {(g cell, w tap)}} of the transposed convolution with ``padding``, from
    tconv.conv_transpose (method scatter) on one-hot gradients and one-hot kernels."""
    g_shape = (1, spec.out_channels) + spec.output_size
    incidence = defaultdict(set)
    for a in range(math.prod(g_shape)):
        for b in range(math.prod(spec.weight_shape)):
            out = tconv.conv_transpose(_onehot(g_shape, a), _onehot(spec.weight_shape, b),
                                       **{**_params(spec), "padding": padding},
                                       output_padding=spec.output_padding, method="scatter")
            for cell in np.flatnonzero(out[0]):
                incidence[int(cell)].add((a, b))
    return incidence


def _terms_by(data, column):
    t = data["terms"]
    by = defaultdict(set)
    for k in range(len(t["g"])):
        if t[column][k] >= 0:
            by[t[column][k]].add((t["g"][k], t["w"][k]))
    return by


@pytest.mark.parametrize("name", SPECS)
def test_incidence_is_the_scatter_of_one_hot_inputs(name):
    """For every output cell, the (g cell, kernel tap) pairs the page lists are those whose
    one-hot transposed convolution reaches it: into x, and onto the padded canvas."""
    spec = SPECS[name]
    data = page.page_data(spec, ints=True)
    assert dict(_terms_by(data, "x")) == dict(_scatter_incidence(spec, spec.padding))
    # the canvas: the same convolution uncropped (padding 0) covers the padded input
    assert dict(_terms_by(data, "p")) == dict(_scatter_incidence(spec, 0))


@pytest.mark.parametrize("name", SPECS)
def test_products_sum_to_the_engine_results(name):
    """The products g*w of each x cell add up to conv_transpose(g, w); those x*w of each o
    cell to conv(x, w); the canvas cells to the uncropped transposed convolution."""
    spec = SPECS[name]
    data = page.page_data(spec, ints=True)
    x, w = story.sample_data(spec, ints=True)
    x = x[:1]
    # with output_padding past the stride the spec's forward output is the first out cells
    o = tconv.conv(x, w, **_params(spec))[(...,) + tuple(slice(0, n) for n in spec.output_size)]
    dx = tconv.conv_transpose(o, w, **_params(spec), output_padding=spec.output_padding)
    full = tconv.conv_transpose(o, w, **{**_params(spec), "padding": 0},
                                output_padding=spec.output_padding)
    t = data["terms"]
    sums = {"x": np.zeros(dx.size, dtype=np.int64), "g": np.zeros(o.size, dtype=np.int64),
            "p": np.zeros(full.size, dtype=np.int64)}
    for k in range(len(t["g"])):
        if t["x"][k] >= 0:
            sums["x"][t["x"][k]] += t["gw"][k]
        sums["g"][t["g"][k]] += t["xw"][k]
        sums["p"][t["p"][k]] += t["gw"][k]
    np.testing.assert_array_equal(sums["x"], dx[0].ravel())
    np.testing.assert_array_equal(sums["g"], o[0].ravel())
    np.testing.assert_array_equal(sums["p"], full[0].ravel())
    np.testing.assert_array_equal(data["values"]["dx"], dx[0].ravel())
    np.testing.assert_array_equal(data["values"]["g"], o[0].ravel())
    np.testing.assert_array_equal(data["values"]["p"], full[0].ravel())


def _entity_values(data):
    return {k: data["values"][k] for k in ("x", "g", "w")}


@pytest.mark.parametrize("name", SPECS)
def test_every_cell_names_what_it_holds(name):
    """A cell keyed as an x, g or w cell shows that cell's value; a keyed padded-input or
    stretched-gradient position without one holds 0; sums keyed by position show the sums."""
    spec = SPECS[name]
    data = page.page_data(spec, ints=True)
    values = _entity_values(data)
    by_position = {"x": data["values"]["dx"], "p": data["values"]["p"]}
    seen_roles = set()
    for step in data["steps"]:
        for panel in step["panels"]:
            seen_roles.add(panel["role"])
            for piece in panel["slices"]:
                assert len(piece["keys"]) == len(piece["values"]) == math.prod(panel["shape"])
                for key, value in zip(piece["keys"], piece["values"]):
                    names = key.split()
                    entities = [k for k in names if k[0] in "xgw"]
                    if panel["role"] == "ids":
                        if entities:
                            assert value == values[entities[0][0]][int(entities[0][1:])], (
                                step["key"], panel["name"], key)
                        else:
                            assert value == 0, (step["key"], panel["name"], key)
                    elif panel["role"] in ("x", "p"):
                        assert value == by_position[panel["role"]][int(names[0][1:])]
                    elif panel["role"] == "g":
                        assert value == values["g"][int(names[0][1:])]
    assert {"ids", "x", "g", "p", "reads"} <= seen_roles


@pytest.mark.parametrize("name", SPECS)
def test_gather_windows_hold_the_contributing_g_cells(name):
    """Under the flipped kernel at x cell q, the stretched gradient's g cells (per g channel)
    are exactly the g cells the scatter sends to q."""
    spec = SPECS[name]
    data = page.page_data(spec, ints=True)
    stretched = next(p for p in data["steps"][6]["panels"] if p["name"].startswith("g stretched"))
    holds = {}
    for piece in stretched["slices"]:
        for key in piece["keys"]:
            names = key.split()
            s = next(k for k in names if k[0] == "s")
            g = next((k for k in names if k[0] == "g"), None)
            holds[int(s[1:])] = None if g is None else int(g[1:])
    n_x = math.prod(spec.input_size)
    n_s = math.prod(data["spec"]["stretched_size"])
    cin_g, cout_g = spec.in_channels // spec.groups, spec.out_channels // spec.groups
    incidence = _terms_by(data, "x")
    for xi in range(spec.in_channels * n_x):
        ci, q = divmod(xi, n_x)
        group = ci // cin_g
        under = {holds[co * n_s + s] for co in range(group * cout_g, (group + 1) * cout_g)
                 for s in data["windows"][q]} - {None}
        assert under == {g for g, _ in incidence.get(xi, ())}, xi


@pytest.mark.parametrize("name", ["experiment", "2d-groups"])
def test_matrix_entries_are_the_terms_inside_x(name):
    spec = SPECS[name]
    data = page.page_data(spec, ints=True)
    (step, panel), = data["views"]["matrix"]
    c = data["steps"][step]["panels"][panel]["slices"][0]
    keys = {k for k in c["keys"] if k}
    t = data["terms"]
    assert keys == {f"m{g}_{x}" for g, x in zip(t["g"], t["x"]) if x >= 0}
    # C itself, as tconv matrix builds it
    view = story.matrix_view(builder._one_sample(spec), story.sample_data(
        spec, ints=True)[1])
    np.testing.assert_array_equal(np.reshape(c["values"], view.c.shape), view.c)


def test_slices_carry_their_channels():
    """With groups, each slice says which x channel and g channel it shows, and a kernel slice
    connects channels of one group."""
    spec = SPECS["2d-groups"]
    data = page.page_data(spec, ints=True)
    for step in data["steps"]:
        for panel in step["panels"]:
            if panel["role"] == "m":
                continue
            for piece in panel["slices"]:
                assert "ci" in piece or "co" in piece
                if "ci" in piece and "co" in piece:
                    assert piece["ci"] // 2 == piece["co"] // 2
    w_panel = data["steps"][0]["panels"][1]
    assert sorted((s["co"], s["ci"]) for s in w_panel["slices"]) == [
        (0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3)]


# -- sizes --------------------------------------------------------------------------------------

def test_three_dims_are_refused_with_a_clear_message():
    spec = ConvSpec.forward((1, 1, 3, 3, 3), (1, 1, 2, 2, 2))
    with pytest.raises(ConvSpecError, match="1-d and 2-d .* 3 spatial dims"):
        page.page_data(spec)


def test_a_page_too_large_is_refused_before_any_array_is_made():
    spec = ConvSpec.forward((1, 8, 30, 30), (8, 8, 3, 3), padding=1)
    with pytest.raises(ConvSpecError) as err:
        builder.check_page_size(spec)
    message = str(err.value)
    assert "518400 products (C_out 8 x C_in/groups 8 x 900 output cells x 9 kernel taps)" \
        in message
    assert "padded input of 8192 cells" in message            # 8 channels of 32 x 32
    assert f"at most {builder.MAX_TERMS} products and {builder.MAX_CELLS} cells" in message
    # sizes far past memory are refused from the parameters alone
    huge = ConvSpec.forward((1, 1, 10**9, 10**9), (1, 1, 3, 3))    # 10**18 cells: int64 holds it
    with pytest.raises(ConvSpecError, match="products"):
        page.page_data(huge)
    # the limits themselves: the largest 1-channel 2-d input of 3x3 kernel that fits
    fits = ConvSpec.forward((1, 1, 47, 47), (1, 1, 3, 3), padding=1)
    builder.check_page_size(fits)      # 47*47*9 = 19881 products, 49*49 = 2401 cells


# -- the page file ------------------------------------------------------------------------------

def test_page_is_self_contained_and_embeds_the_data():
    data = page.page_data(EXPERIMENT, ints=True)
    text = page.render(data)
    assert "connect-src 'none'" in text and "default-src 'none'" in text
    for fetchable in ("<link", "<script src", "@import", "url(", "http://", "https://",
                      "<img", "<iframe"):
        assert fetchable not in text, fetchable
    blob = re.search(r'<script type="application/json" id="tconv-data">(.*?)</script>', text,
                     re.S).group(1)
    assert json.loads(blob) == {"serve": False, "page": data}
    assert "{{" not in text


def test_embedded_json_cannot_close_its_script():
    text = builder._json_for_script({"a": "</script><script>alert(1)</script> & <!--"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "</script><script>alert(1)</script> & <!--"}


def _tconv(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tconv.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "COLUMNS": "200"})


def test_explain_html_writes_the_page_of_the_experiment(tmp_path):
    proc = _tconv("explain", "--ints", "--html", "seed.html", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "wrote seed.html" in proc.stdout
    text = (tmp_path / "seed.html").read_text()
    blob = re.search(r'id="tconv-data">(.*?)</script>', text, re.S).group(1)
    assert json.loads(blob)["page"] == page.page_data(EXPERIMENT, ints=True)


@pytest.mark.parametrize("args, message", [
    (["--input", "1,1,3,3,3"], "1-d and 2-d convolutions; this spec has 3 spatial dims"),
    (["--input", "1,8,30,30", "--out-channels", "8"], "a page holds at most"),
])
def test_explain_html_refuses_in_one_line(tmp_path, args, message):
    proc = _tconv("explain", *args, "--html", str(tmp_path / "p.html"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("tconv: error: ") and message in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "p.html").exists()


def test_explain_html_unwritable_path_is_one_line(tmp_path):
    proc = _tconv("explain", "--html", str(tmp_path / "missing" / "p.html"))
    assert proc.returncode == 2 and "cannot be written" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


# -- the server ---------------------------------------------------------------------------------

@contextlib.contextmanager
def serving():
    """``tconv serve``'s server on a free port of 127.0.0.1, in a thread, for the body."""
    srv = serve.make_server("127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def server():
    with serving() as srv:
        yield srv


def _request(srv, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()


def test_server_binds_loopback_by_default(server):
    assert server.server_address[0] == "127.0.0.1"
    assert server.server_address[1] > 0


def test_server_front_page_is_the_playground(server):
    status, kind, body = _request(server, "GET", "/")
    assert status == 200 and kind.startswith("text/html")
    text = body.decode()
    assert "connect-src 'self'" in text and 'id="playground"' in text
    blob = re.search(r'id="tconv-data">(.*?)</script>', text, re.S).group(1)
    data = json.loads(blob)
    assert data["serve"] is True and data["page"] == page.page_data(EXPERIMENT, ints=True)


def test_server_answers_a_valid_spec_with_the_engine_data(server):
    query = ("/api/page?dims=1&size=9&kernel=3&stride=3&padding=2:0&dilation=2&in_channels=1"
             "&out_channels=1&groups=1&seed=0&ints=1&output_padding=")
    status, kind, body = _request(server, "GET", query)
    assert status == 200 and kind.startswith("application/json")
    assert json.loads(body) == page.page_data(SPECS["1d-asymmetric-dilated"], ints=True)
    # POST: the same fields form-encoded, or as JSON
    form = query.split("?", 1)[1]
    status, _, posted = _request(server, "POST", "/api/page", form,
                                 {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and json.loads(posted) == json.loads(body)
    fields = dict(part.split("=") for part in form.split("&"))
    status, _, posted = _request(server, "POST", "/api/page", json.dumps(fields),
                                 {"Content-Type": "application/json"})
    assert status == 200 and json.loads(posted) == json.loads(body)


@pytest.mark.parametrize("query, field, message", [
    ("kernel=9&size=4", "kernel", "kernel size 9 (dilated extent 9) is larger than the padded "
                                  "input 4+1+1=6"),
    ("groups=2&in_channels=3", "groups", "groups=2 must divide the in channels 3"),
    ("groups=2&in_channels=2&out_channels=3", "groups",
     "groups=2 must divide the input channels 2 (input 1,2,4,4) and out-channels 3"),
    ("stride=0", "stride", "stride must be >= 1"),
    ("padding=1:2:3", "padding", "padding pairs are low:high, got '1:2:3'"),
    ("output_padding=5", "output_padding", "output_padding=(5, 5) does not fit input size"),
    ("kernel=3,3,3", "kernel", "kernel takes one value or 2"),
    ("dims=3", "dims", "dims must be between 1 and 2"),
    ("size=a", "size", "size takes integers"),
    ("size=200&in_channels=4", "size", "a page holds at most 20000 products"),
    ("color=red", "form", "unknown field(s) 'color'"),
    ("kernel=3&kernel=4", "kernel", "kernel is given 2 times"),
])
def test_server_names_the_field_of_a_bad_spec(server, query, field, message):
    status, kind, body = _request(server, "GET", "/api/page?" + query)
    assert status == 400 and kind.startswith("application/json")
    answer = json.loads(body)
    assert answer["field"] == field
    assert message in answer["error"]
    assert "Traceback" not in answer["error"]


def test_server_refuses_oversized_requests(server):
    status, _, body = _request(server, "GET", "/api/page?size=" + "1" * serve.MAX_QUERY)
    assert status == 414 and "more than 2048" in json.loads(body)["error"]
    # a body larger than the limit is refused from its Content-Length, unread
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    conn.putrequest("POST", "/api/page")
    conn.putheader("Content-Length", str(10**9))
    conn.putheader("Content-Type", "application/x-www-form-urlencoded")
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"] == \
        f"the request body is {10**9} bytes, more than {serve.MAX_BODY}"
    conn.close()
    status, _, _ = _request(server, "POST", "/api/page", "kernel=" + "3," * 3000,
                            {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 413
    status, _, body = _request(server, "GET", "/api/page?kernel=" + "3" * 65)
    assert status == 400 and "more than 64" in json.loads(body)["error"]
    status, _, _ = _request(server, "GET", "/elsewhere")
    assert status == 404


def test_tconv_serve_prints_its_url_and_serves(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "tconv.cli", "serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.match(r"tconv serve: http://127\.0\.0\.1:(\d+)/ ", line)
        assert match, line
        conn = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=10)
        conn.request("GET", "/api/page?kernel=2&stride=1&padding=0")
        response = conn.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["spec"]["kernel_size"] == [2, 2]
        conn.close()
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def test_tconv_serve_bad_port_is_one_line():
    proc = _tconv("serve", "--port", "70000")
    assert proc.returncode == 2 and proc.stderr.startswith("tconv: error: --port")


def test_field_words_pick_the_first_named_field():
    assert serve._field_of("output_padding=(2, 2) out of range") == "output_padding"
    assert serve._field_of("kernel size 5 (dilated extent 9) is larger than the padded "
                           "input 4+0+0=4 in spatial dim 0") == "kernel"
    assert serve._field_of("nothing known") is None


def test_one_hot_incidence_helper_sees_every_tap():
    """The independent incidence counts prod(kernel) taps per g cell on the padded canvas."""
    spec = SPECS["experiment"]
    incidence = _scatter_incidence(spec, 0)
    per_g = defaultdict(int)
    for pairs in incidence.values():
        for a, _ in pairs:
            per_g[a] += 1
    assert dict(per_g) == {a: 9 for a in range(4)}
    assert sum(len(v) for v in incidence.values()) == 36 == len(
        list(itertools.product(range(4), range(9))))
